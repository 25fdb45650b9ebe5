"""The public web form: tickets without login, clear errors, size and rate limits,
knowledge-base suggestions while typing."""

from __future__ import annotations

from sqlalchemy import select

from trellis.db import db
from trellis.models import Contact


def test_web_form_creates_tickets_rejects_bad_input_and_is_rate_limited(
        trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["service"],
                              config={"SERVICE_WEBFORM_RATE_LIMIT": "4 per minute"})
    admin = app.test_client()
    headers = api_login(admin)
    admin.post("/api/v1/kb_article/", headers=headers,
               json={"title": "Reset a password", "body": "Use the forgot password link.",
                     "status": "published"})
    visitor = app.test_client()  # no login
    assert visitor.get("/support/").status_code == 200
    suggested = visitor.get("/support/suggest", query_string={"q": "forgot my password"})
    assert [a["title"] for a in suggested.get_json()["result"]] == ["Reset a password"]

    created = visitor.post("/support/", data={"name": "Wen Zhang", "email": "Wen@Example.com",
                                              "subject": "Locked out",
                                              "description": "Cannot sign in."})
    assert created.status_code == 201 and b"[#" in created.data
    from trellis_service.models import Ticket

    with app.app_context():
        ticket = db.session.scalar(select(Ticket))
        assert (ticket.channel, ticket.subject, ticket.email) == (
            "web_form", "Locked out", "wen@example.com")
        contact = db.session.get(Contact, ticket.contact_id)
        assert (contact.first_name, contact.last_name, contact.email) == (
            "Wen", "Zhang", "wen@example.com")

    invalid = visitor.post("/support/", data={"email": "not-an-address", "subject": "",
                                              "description": "x"})
    assert invalid.status_code == 400
    assert b'id="error-email"' in invalid.data and b'id="error-subject"' in invalid.data
    assert b'value="not-an-address"' in invalid.data  # the input is kept
    as_json = visitor.post("/support/", json={"email": "a@b.example", "subject": "s" * 201,
                                              "description": ""})
    assert as_json.status_code == 400
    assert set(as_json.get_json()["message"]) == {"subject", "description"}
    huge = visitor.post("/support/", data={"email": "a@b.example", "subject": "Big",
                                           "description": "x" * 70_000})
    assert huge.status_code == 413
    limited = visitor.post("/support/", data={"email": "a@b.example", "subject": "Again",
                                              "description": "Hello"})
    assert limited.status_code == 429
    with app.app_context():
        assert db.session.scalar(select(Ticket.id).where(Ticket.subject == "Again")) is None
