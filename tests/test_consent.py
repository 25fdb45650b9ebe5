"""The consent ledger: append-only entries, the current state, set-based checks
under opt-in and opt-out purposes, double opt-in, and suppression after erasure."""

from __future__ import annotations

import email
import re

import pytest
from sqlalchemy import select

from trellis import consent
from trellis.db import db
from trellis.models import ConsentRecord, ConsentState, Contact
from trellis.settings import update_settings
from trellis.testing import csrf_token


@pytest.fixture
def site(trellis_app_factory, api_login, tmp_path):
    app = trellis_app_factory(config={"TRELLIS_MAIL_OUTBOX": str(tmp_path / "outbox")})
    with app.app_context():
        ana = Contact(first_name="Ana", last_name="A", email="Ana@Example.com")
        bo = Contact(first_name="Bo", last_name="B", email="bo@example.com")
        cy = Contact(first_name="Cy", last_name="C", email="cy@example.com")
        db.session.add_all([ana, bo, cy])
        db.session.commit()
        ids = {"ana": ana.id, "bo": bo.id, "cy": cy.id}
    client = app.test_client()
    return app, client, api_login(client), ids, tmp_path / "outbox"


def reachable(app, channel="email", purpose="marketing"):
    with app.app_context():
        return set(db.session.scalars(select(Contact.id).where(
            consent.allowed(Contact.id, channel, purpose))))


def test_ledger_entries_move_the_state_and_checks_follow_the_purposes_regime(site):
    app, client, admin, ids, _ = site
    post = lambda **body: client.post("/api/v1/consent/", headers=admin, json=body)  # noqa
    assert post(contact_id=ids["ana"], channel="email", purpose="marketing",
                granted=True, source="web_form").status_code == 201
    assert post(contact_id=ids["bo"], channel="email", purpose="marketing",
                granted=False, source="unsubscribe_link").status_code == 201
    # opt-out regime (the default): everyone but the withdrawn Bo
    assert reachable(app) == {ids["ana"], ids["cy"]}
    assert reachable(app, "sms") == {ids["ana"], ids["bo"], ids["cy"]}
    with app.app_context():
        update_settings("core", {"consent_opt_in_purposes": "marketing, newsletter"})
    # opt-in regime: only Ana, who granted
    assert reachable(app) == {ids["ana"]}
    assert reachable(app, purpose="service") == {ids["ana"], ids["bo"], ids["cy"]}
    # Bo grants again: the latest entry wins
    assert post(contact_id=ids["bo"], channel="email", purpose="marketing",
                granted=True).status_code == 201
    assert reachable(app) == {ids["ana"], ids["bo"]}
    with app.app_context():
        assert consent.is_allowed(db.session, ids["bo"], "email", "marketing")
        history = db.session.execute(select(ConsentRecord.granted, ConsentRecord.source,
                                            ConsentRecord.recorded_by)
                                     .where(ConsentRecord.contact_id == ids["bo"])
                                     .order_by(ConsentRecord.id)).all()
        admin_id = app.appbuilder.sm.find_user(username="admin").id
        assert history == [(False, "unsubscribe_link", admin_id), (True, "manual", admin_id)]
        state = db.session.get(ConsentState, (ids["bo"], "email", "marketing"))
        assert state.granted and state.record.source == "manual"


def test_the_ledger_is_append_only(site):
    app, client, admin, ids, _ = site
    created = client.post("/api/v1/consent/", headers=admin, json={
        "contact_id": ids["ana"], "channel": "email", "purpose": "marketing", "granted": True})
    entry_id = created.get_json()["id"]
    assert client.put(f"/api/v1/consent/{entry_id}", headers=admin,
                      json={"granted": False}).status_code in (404, 405)
    assert client.delete(f"/api/v1/consent/{entry_id}", headers=admin).status_code in (404, 405)
    with app.app_context():
        entry = db.session.get(ConsentRecord, entry_id)
        entry.granted = False
        with pytest.raises(consent.ConsentImmutable):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.get(ConsentRecord, entry_id))
        with pytest.raises(consent.ConsentImmutable):
            db.session.commit()
        db.session.rollback()
        assert db.session.get(ConsentRecord, entry_id).granted is True


def test_bad_entries_get_field_errors_and_nothing_is_written(site):
    app, client, admin, ids, _ = site
    response = client.post("/api/v1/consent/", headers=admin, json={
        "contact_id": 999, "channel": "pigeon", "purpose": "Marketing!", "granted": "maybe",
        "lawful_basis": "because"})
    assert response.status_code == 400
    assert set(response.get_json()["message"]) >= {"contact_id", "channel", "purpose",
                                                   "granted", "lawful_basis"}
    with app.app_context():
        update_settings("core", {})
    bad_setting = client.put("/api/v1/settings/core", headers=admin,
                             json={"consent_opt_in_purposes": "marketing; DROP"})
    assert bad_setting.status_code == 400
    assert "consent_opt_in_purposes" in bad_setting.get_json()["message"]
    with app.app_context():
        assert db.session.scalar(select(ConsentRecord.id)) is None


def test_double_opt_in_grants_only_after_the_contact_confirms(site):
    app, client, _, ids, outbox = site
    with app.test_request_context():
        update_settings("core", {"consent_opt_in_purposes": "newsletter"})
        ana = db.session.get(Contact, ids["ana"])
        assert consent.request_confirmation(db.session, ana, "newsletter")
    message = email.message_from_bytes(next(outbox.glob("*.eml")).read_bytes())
    assert message["To"] == "Ana@Example.com"
    link = re.search(r"(/consent/confirm/\S+)", message.get_payload(decode=True).decode()
                     ).group(1)
    assert reachable(app, purpose="newsletter") == set()
    page = client.get(link)  # a mail scanner following the link confirms nothing
    assert page.status_code == 200 and "Yes, subscribe me" in page.get_data(as_text=True)
    assert reachable(app, purpose="newsletter") == set()
    done = client.post(link, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert "your subscription is confirmed" in done.get_data(as_text=True)
    assert reachable(app, purpose="newsletter") == {ids["ana"]}
    with app.app_context():
        entry = db.session.scalar(select(ConsentRecord))
        assert entry.evidence["method"] == "double_opt_in" and entry.source == "web_form"
        assert entry.email_hash == consent.email_hash("ana@example.com")
    tampered = link[:-3] + ("x" if link[-3] != "x" else "y") + link[-2:]
    assert client.get(tampered).status_code == 400


def test_a_withdrawal_survives_the_contacts_deletion_as_a_suppressed_hash(site):
    app, client, admin, ids, _ = site
    client.post("/api/v1/consent/", headers=admin, json={
        "contact_id": ids["bo"], "channel": "email", "purpose": "marketing", "granted": False})
    with app.app_context():
        db.session.delete(db.session.get(Contact, ids["bo"]))
        db.session.commit()
        kept = db.session.scalar(select(ConsentRecord))
        assert kept.contact_id is None
        assert set(db.session.scalars(consent.suppressed_emails())) == {
            consent.email_hash("BO@example.com ")}


def test_contact_page_shows_the_consent_panel(site, web_login):
    app, client, admin, ids, _ = site
    client.post("/api/v1/consent/", headers=admin, json={
        "contact_id": ids["ana"], "channel": "sms", "purpose": "service", "granted": True})
    web = app.test_client()
    web_login(web)
    page = web.get(f"/contactview/show/{ids['ana']}").get_data(as_text=True)
    panel = page[page.index('id="panel-core-consent"'):]
    assert "sms" in panel and "service" in panel and "granted" in panel
