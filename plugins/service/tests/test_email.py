"""The e-mail channel against a real SMTP server (aiosmtpd): the customer's mail
reaches the inbound endpoint (as a mail server's pipe would post it) and opens
a ticket, the agent's reply goes out by SMTP with threading headers, the
customer's answer threads back into the same ticket."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import select

from trellis.db import db
from trellis.models import Activity, Contact

from service_testkit import SECRET, SUPPORT, desk, smtp_server  # noqa: F401


def test_email_to_ticket_reply_by_smtp_and_threaded_answer(desk):
    app, client, headers, ids, customer_sends, mailbox = desk
    opened = customer_sends("Cora Customer <Cora@Example.com>", "Printer on fire",
                            "It smokes.", "<c1@example.com>")
    assert opened.status_code == 201, opened.get_json()
    ticket_id = opened.get_json()["ticket_id"]
    assert opened.get_json()["created"] is True
    ticket = client.get(f"/api/v1/ticket/{ticket_id}", headers=headers["admin"]).get_json()["result"]
    assert (ticket["channel"], ticket["contact_id"], ticket["email"], ticket["description"]) == (
        "email", ids["contact"], "cora@example.com", "It smokes.")  # the existing contact

    # the manager gives it to ann, who answers
    assert client.put(f"/api/v1/ticket/{ticket_id}", headers=headers["boss"],
                      json={"team_id": ids["support"], "assignee_id": ids["ann"]}).status_code == 200
    client.post("/api/v1/ticket_message/", headers=headers["ann"],
                json={"ticket_id": ticket_id, "kind": "note", "body": "Fire brigade?"})
    reply = client.post("/api/v1/ticket_message/", headers=headers["ann"],
                        json={"ticket_id": ticket_id, "body": "Unplug it, please."})
    assert reply.status_code == 201
    [answer] = mailbox("cora@example.com")  # the note was not sent
    assert answer["Subject"] == f"Re: Printer on fire [#{ticket_id}]"
    assert answer["From"] == SUPPORT
    assert answer["In-Reply-To"] == "<c1@example.com>"
    assert answer["References"] == "<c1@example.com>"
    assert answer.get_content().strip() == "Unplug it, please."
    stored = client.get(f"/api/v1/ticket_message/{reply.get_json()['id']}",
                        headers=headers["ann"]).get_json()["result"]
    assert stored["message_id"] == answer["Message-ID"] and stored["sent_at"] is not None
    assert client.put(f"/api/v1/ticket/{ticket_id}", headers=headers["ann"],
                      json={"status": "pending"}).status_code == 200

    # the customer answers the agent's mail: same ticket, reopened
    threaded = customer_sends("cora@example.com", answer["Subject"].replace("Re:", "Re: Re:", 1),
                              "Done, it stopped.", "<c2@example.com>",
                              in_reply_to=answer["Message-ID"],
                              references=("<c1@example.com>", answer["Message-ID"]))
    assert threaded.status_code == 201
    assert threaded.get_json()["ticket_id"] == ticket_id
    assert threaded.get_json()["created"] is False
    ticket = client.get(f"/api/v1/ticket/{ticket_id}", headers=headers["ann"]).get_json()["result"]
    assert ticket["status"] == "open"

    client.post("/api/v1/ticket_message/", headers=headers["ann"],
                json={"ticket_id": ticket_id, "body": "Glad to hear."})
    second = mailbox("cora@example.com")[-1]
    assert second["In-Reply-To"] == "<c2@example.com>"
    assert second["References"].split() == ["<c1@example.com>", answer["Message-ID"],
                                            "<c2@example.com>"]
    with app.app_context():
        types = db.session.scalars(select(Activity.type).where(
            Activity.contact_id == ids["contact"]).order_by(Activity.id)).all()
    assert types == ["ticket.opened", "ticket.note", "ticket.reply", "ticket.pending",
                     "ticket.customer_message", "ticket.open", "ticket.reply"]


def test_subject_reference_threads_only_for_the_tickets_own_customer(desk):
    app, client, headers, ids, customer_sends, mailbox = desk
    first = customer_sends("cora@example.com", "Question", "Hi", "<q1@example.com>")
    ticket_id = first.get_json()["ticket_id"]
    # no headers, but the reference in the subject, from the same address
    again = customer_sends("cora@example.com", f"More about [#{ticket_id}]", "Also...",
                           "<q2@example.com>")
    assert again.get_json()["ticket_id"] == ticket_id
    assert (again.get_json()["created"], again.get_json()["duplicate"]) == (False, False)
    # a stranger guessing the number gets a ticket (and a contact) of their own
    stranger = customer_sends("Zed Zero <zed@example.org>", f"Re: [#{ticket_id}]", "Let me in",
                              "<z1@example.org>")
    assert stranger.get_json()["created"] is True
    assert stranger.get_json()["ticket_id"] != ticket_id
    with app.app_context():
        zed = db.session.scalar(select(Contact).where(Contact.email == "zed@example.org"))
        assert (zed.first_name, zed.last_name) == ("Zed", "Zero")


def test_inbound_endpoint_authenticates_and_rejects_bad_input(desk):
    app, client, headers, ids, customer_sends, mailbox = desk
    raw = (b"From: cora@example.com\r\nTo: support@desk.example\r\nSubject: Hi\r\n"
           b"Message-ID: <dup@example.com>\r\n\r\nBody\r\n")
    url = "/service/inbound/email"
    assert client.post(url, data=raw).status_code == 401
    assert client.post(url, data=raw,
                       headers={"X-Trellis-Inbound-Token": "wrong"}).status_code == 401
    ok = {"X-Trellis-Inbound-Token": SECRET}
    assert client.post(url, data=raw, headers=ok).status_code == 201
    redelivered = client.post(url, data=raw, headers=ok)
    assert redelivered.status_code == 200 and redelivered.get_json()["duplicate"] is True
    no_sender = client.post(url, data=b"Subject: nobody\r\n\r\nhello", headers=ok)
    assert no_sender.status_code == 400 and list(no_sender.get_json()["message"]) == ["from"]
    empty = client.post(url, data=b"", headers=ok)
    assert empty.status_code == 400 and "message" in empty.get_json()["message"]


def test_attachments_are_stored_safely(desk):
    import io

    from trellis.settings import update_settings

    app, client, headers, ids, customer_sends, mailbox = desk
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "cora@example.com", SUPPORT, "Invoice attached"
    msg["Message-ID"] = "<att@example.com>"
    msg.set_content("See attached.")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf",
                       filename="../../invoice.pdf")
    msg.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html",
                       filename="page.html")
    answer = client.post("/service/inbound/email", data=bytes(msg),
                         headers={"X-Trellis-Inbound-Token": SECRET})
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["attachments"] == 1 and len(body["skipped"]) == 1
    assert "Files of type .html are not accepted" in body["skipped"][0]
    ticket_id = body["ticket_id"]
    client.put(f"/api/v1/ticket/{ticket_id}", headers=headers["boss"],
               json={"team_id": ids["support"], "assignee_id": ids["ann"]})
    ann = headers["ann"]
    [pdf] = client.get(f"/api/v1/ticket/{ticket_id}/attachments", headers=ann).get_json()["result"]
    assert (pdf["filename"], pdf["content_type"]) == ("invoice.pdf", "application/pdf")
    got = client.get(pdf["url"], headers=ann)
    assert got.status_code == 200 and got.data == b"%PDF-1.4 fake"
    assert got.headers["Content-Disposition"] == 'attachment; filename="invoice.pdf"'
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"].startswith("sandbox")

    def upload(name, data, who=ann):
        return client.post(f"/api/v1/ticket/{ticket_id}/attachments", headers=who,
                           data={"file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")

    assert upload("notes.txt", b"hello").status_code == 201
    svg = upload("logo.svg", b"<svg onload=alert(1)>")
    assert svg.status_code == 400 and list(svg.get_json()["message"]) == ["file"]
    with app.app_context():
        update_settings("service", {"attachment_max_mb": 1})
        db.session.commit()
    big = upload("big.txt", b"x" * (1024 * 1024 + 10))
    assert big.status_code == 400 and "larger than 1 MB" in big.get_json()["message"]["file"][0]
    # dan (another team) can neither list, download nor upload
    assert client.get(pdf["url"], headers=headers["dan"]).status_code == 404
    assert upload("x.txt", b"x", who=headers["dan"]).status_code == 404
