"""Acceptance: resolving sends the survey by SMTP (aiosmtpd), the customer rates
through the signed link, the rating shows on the ticket, in the CSAT report
and as the contact's satisfaction feature."""

from __future__ import annotations

import re

from sqlalchemy import select

from trellis import features
from trellis.db import db
from trellis.models import Activity

from service_testkit import SECRET, SUPPORT, desk, smtp_server  # noqa: F401


def _survey_link(message) -> str:
    return re.search(r"https?://\S+|/service/survey/\S+", message.get_content()).group(0)


def test_resolve_sends_survey_rating_shows_on_ticket_and_in_csat(desk, web_login):
    app, client, headers, ids, customer_sends, mailbox = desk
    ticket_id = customer_sends("cora@example.com", "Broken login", "I cannot log in.",
                               "<s1@example.com>").get_json()["ticket_id"]
    client.put(f"/api/v1/ticket/{ticket_id}", headers=headers["boss"],
               json={"team_id": ids["support"], "assignee_id": ids["ann"]})
    client.post("/api/v1/ticket_message/", headers=headers["ann"],
                json={"ticket_id": ticket_id, "body": "Password reset sent."})
    assert client.put(f"/api/v1/ticket/{ticket_id}", headers=headers["ann"],
                      json={"status": "resolved"}).status_code == 200
    inbox = mailbox("cora@example.com")
    assert [m["Subject"] for m in inbox] == [f"Re: Broken login [#{ticket_id}]",
                                             f"How did we do? [#{ticket_id}]"]
    link = _survey_link(inbox[-1])
    path = link[link.index("/service/survey/"):]
    # reopening and resolving again sends no second survey
    client.put(f"/api/v1/ticket/{ticket_id}", headers=headers["ann"], json={"status": "open"})
    client.put(f"/api/v1/ticket/{ticket_id}", headers=headers["ann"], json={"status": "resolved"})
    assert len(mailbox("cora@example.com")) == 2

    customer = app.test_client()  # no login
    form = customer.get(path)
    assert form.status_code == 200 and b"Broken login" in form.data
    assert customer.get(path[:-3] + "xyz").status_code == 404  # tampered
    bad = customer.post(path, data={"rating": "9", "nps": "11"})
    assert bad.status_code == 400
    assert b'id="error-rating"' in bad.data and b'id="error-nps"' in bad.data
    good = customer.post(path, data={"rating": "4", "nps": "9", "comment": "Quick, thanks"})
    assert good.status_code == 200 and b"Thank you" in good.data
    assert customer.post(path, data={"rating": "1"}).status_code == 409  # once

    ticket = client.get(f"/api/v1/ticket/{ticket_id}", headers=headers["ann"]).get_json()["result"]
    assert ticket["rating"] == 4
    page = app.test_client()
    web_login(page)
    shown = page.get(f"/ticketview/show/{ticket_id}")
    assert shown.status_code == 200 and b"4/5: Quick, thanks" in shown.data
    assert page.get("/surveyview/list/").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Activity.subject).where(
            Activity.type == "ticket.rated")) == f"Rated ticket #{ticket_id}: 4/5"

    # more answered surveys, for hand-computed figures
    from trellis_service.models import Survey, Ticket

    with app.app_context():
        def rated(agent, rating, contact=None):
            ticket = Ticket(subject="x", team_id=ids["support"], assignee_id=ids[agent],
                            contact_id=contact, status="resolved")
            db.session.add(ticket)
            db.session.flush()
            db.session.add(Survey(ticket_id=ticket.id, agent_id=ids[agent],
                                  team_id=ids["support"], contact_id=contact, rating=rating))

        rated("ann", 2, ids["contact"])
        rated("ann", 5)
        rated("bob", 3)
        db.session.commit()
        # Cora: 4 and 2
        assert features.values(db.session, "satisfaction", [ids["contact"]]) == {
            ids["contact"]: 3.0}

    by_agent = client.get("/api/v1/service_report/csat", headers=headers["boss"],
                          query_string={"by": "agent"}).get_json()["result"]
    # ann: 4, 2, 5 → 3 responses, 11/3 = 3.67, 2 of 3 satisfied = 66.7 %; bob: 3 → 0 %
    assert by_agent == [
        {"id": ids["ann"], "label": "ann", "responses": 3, "average": 3.67, "csat_pct": 66.7},
        {"id": ids["bob"], "label": "bob", "responses": 1, "average": 3.0, "csat_pct": 0.0}]
    by_team = client.get("/api/v1/service_report/csat", headers=headers["boss"],
                         query_string={"by": "team"}).get_json()["result"]
    # 4, 2, 5, 3 → 14/4 = 3.5, 2 of 4 = 50 %
    assert by_team == [{"id": ids["support"], "label": "Support", "responses": 4,
                        "average": 3.5, "csat_pct": 50.0}]
    # dan (Billing) sees none of Support's surveys
    assert client.get("/api/v1/service_report/csat", headers=headers["dan"]) \
        .get_json()["result"] == []
    bad_by = client.get("/api/v1/service_report/csat", headers=headers["boss"],
                        query_string={"by": "planet"})
    assert bad_by.status_code == 400 and list(bad_by.get_json()["message"]) == ["by"]
