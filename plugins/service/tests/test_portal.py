"""The customer portal: sign-in by e-mailed link (real SMTP), own tickets only,
no internal notes, replies and new tickets with the portal's CSRF token."""

from __future__ import annotations

import re

from sqlalchemy import select

from trellis.db import db

from service_testkit import SECRET, SUPPORT, desk, smtp_server  # noqa: F401


def _csrf(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def test_portal_sign_in_own_tickets_replies_and_no_notes(desk, web_login):
    app, client, headers, ids, customer_sends, mailbox = desk
    mine = customer_sends("cora@example.com", "Broken screen", "It flickers.",
                          "<p1@example.com>").get_json()["ticket_id"]
    other = customer_sends("zed@example.org", "Not Cora's", "Private.",
                           "<p2@example.org>").get_json()["ticket_id"]
    client.put(f"/api/v1/ticket/{mine}", headers=headers["boss"],
               json={"team_id": ids["support"], "assignee_id": ids["ann"]})
    client.post("/api/v1/ticket_message/", headers=headers["ann"],
                json={"ticket_id": mine, "kind": "note", "body": "SECRET NOTE"})
    client.post("/api/v1/ticket_message/", headers=headers["ann"],
                json={"ticket_id": mine, "body": "Try another cable."})
    client.put(f"/api/v1/ticket/{mine}", headers=headers["ann"], json={"status": "resolved"})

    customer = app.test_client()
    assert b"E-mail me a sign-in link" in customer.get("/portal/").data
    asked = customer.post("/portal/login", data={"email": "Cora@example.com"})
    nobody = customer.post("/portal/login", data={"email": "nobody@example.com"})
    assert asked.status_code == nobody.status_code == 200
    assert b'id="link-sent"' in asked.data and b'id="link-sent"' in nobody.data
    assert mailbox("nobody@example.com") == []
    link_mail = [m for m in mailbox("cora@example.com") if m["Subject"] == "Your sign-in link"]
    path = re.search(r"/portal/login/\S+", link_mail[-1].get_content()).group(0)
    assert customer.get(path[:-2] + "xx").status_code == 400  # tampered
    assert customer.get(path).status_code == 302

    home = customer.get("/portal/")
    assert b"Broken screen" in home.data and b"Not Cora's" not in home.data
    page = customer.get(f"/portal/tickets/{mine}")
    assert b"Try another cable." in page.data and b"SECRET NOTE" not in page.data
    assert customer.get(f"/portal/tickets/{other}").status_code == 404

    # a reply without the portal's CSRF token is refused; with it, it reopens the ticket
    assert customer.post(f"/portal/tickets/{mine}", data={"body": "Still broken"}).status_code == 400
    replied = customer.post(f"/portal/tickets/{mine}",
                            data={"body": "Still broken", "csrf_token": _csrf(page)})
    assert replied.status_code == 302
    ticket = client.get(f"/api/v1/ticket/{mine}", headers=headers["ann"]).get_json()["result"]
    assert ticket["status"] == "open"
    empty = customer.post(f"/portal/tickets/{mine}", data={"body": " ", "csrf_token": _csrf(page)})
    assert empty.status_code == 400 and b'id="error-body"' in empty.data

    created = customer.post("/portal/tickets", data={"subject": "Second issue",
                                                     "description": "Keyboard too.",
                                                     "csrf_token": _csrf(home)})
    assert created.status_code == 302
    from trellis_service.models import Ticket

    with app.app_context():
        new = db.session.scalar(select(Ticket).where(Ticket.subject == "Second issue"))
        assert new.contact_id == ids["contact"] and new.channel == "web_form"

    # a staff session does not open the portal
    staff = app.test_client()
    web_login(staff)
    assert staff.get("/ticketview/list/").status_code == 200
    assert b"E-mail me a sign-in link" in staff.get("/portal/").data
    customer.post("/portal/logout", data={"csrf_token": _csrf(home)})
    assert b"E-mail me a sign-in link" in customer.get("/portal/").data
