"""Personal-data export (one ZIP with every plugin's part) and erasure on request
(anonymised in place, audit redacted, consent kept), in the API, UI and CLI."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import select

from trellis import consent
from trellis.db import db
from trellis.models import Activity, AuditEntry, ConsentRecord, Contact, Note, Tag
from trellis.testing import csrf_token


@pytest.fixture
def site(trellis_app_factory, api_login, make_user):
    app = trellis_app_factory(plugins=["sales"])
    make_user(app, "dpo", ["Privacy Officer"])
    make_user(app, "clerk", ["CRM User"])
    client = app.test_client()
    admin = api_login(client)
    ana = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "Ana", "last_name": "Lopez", "email": "ana@example.com",
        "phone": "+34 600 000 000"}).get_json()["id"]
    client.post("/api/v1/note/", headers=admin, json={"body": "Ana likes tea", "contact_id": ana})
    client.post("/api/v1/consent/", headers=admin, json={
        "contact_id": ana, "channel": "email", "purpose": "marketing", "granted": False,
        "source": "unsubscribe_link"})
    lead = client.post("/api/v1/lead/", headers=admin, json={
        "first_name": "Ana", "last_name": "Lopez", "email": "ANA@example.com"}).get_json()["id"]
    deal = client.post("/api/v1/deal/", headers=admin, json={
        "name": "Tea deal", "contact_id": ana, "amount": 250}).get_json()["id"]
    client.post("/api/v1/task/", headers=admin, json={
        "subject": "Call Ana about tea", "notes": "mobile +34 600", "contact_id": ana})
    with app.app_context():
        contact = db.session.get(Contact, ana)
        contact.tags.append(Tag(name="VIP"))
        db.session.add(Activity(type="call", subject="Ana called", contact_id=ana,
                                payload={"said": "hello"}))
        db.session.commit()
    return app, client, {"admin": admin, "dpo": api_login(client, "dpo", "pw-123456"),
                         "clerk": api_login(client, "clerk", "pw-123456")}, \
        {"ana": ana, "lead": lead, "deal": deal}


def test_export_collects_every_plugin_and_is_audited(site):
    app, client, headers, ids = site
    response = client.get(f"/api/v1/privacy/{ids['ana']}/export", headers=headers["dpo"])
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == ["core.json", "manifest.json", "sales.json"]
    core = json.loads(archive.read("core.json"))
    assert core["contact"]["email"] == "ana@example.com" and core["tags"] == ["VIP"]
    assert [n["body"] for n in core["notes"]] == ["Ana likes tea"]
    assert [c["source"] for c in core["consent"]] == ["unsubscribe_link"]
    sales = json.loads(archive.read("sales.json"))
    assert [lead["id"] for lead in sales["leads"]] == [ids["lead"]]  # matched by e-mail
    assert [d["name"] for d in sales["deals"]] == ["Tea deal"]
    assert sales["tasks"][0]["notes"] == "mobile +34 600"
    as_json = client.get(f"/api/v1/privacy/{ids['ana']}/export?format=json",
                         headers=headers["dpo"]).get_json()
    assert set(as_json["plugins"]) == {"core", "sales"}
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.action).where(
            AuditEntry.action == "exported", AuditEntry.record_id == str(ids["ana"])))
    # a CRM User may manage contacts but not export or erase personal data
    assert client.get(f"/api/v1/privacy/{ids['ana']}/export",
                      headers=headers["clerk"]).status_code == 403
    assert client.get("/api/v1/privacy/999/export", headers=headers["dpo"]).status_code == 404


def test_erasure_anonymises_keeps_figures_and_consent_and_redacts_the_audit(site):
    from trellis_sales.models import Deal, Lead, Task

    app, client, headers, ids = site
    refused = client.post(f"/api/v1/privacy/{ids['ana']}/erase", headers=headers["dpo"],
                          json={"reason": "asked"})
    assert refused.status_code == 400 and "confirm" in refused.get_json()["message"]
    done = client.post(f"/api/v1/privacy/{ids['ana']}/erase", headers=headers["dpo"],
                       json={"confirm": "ERASE", "reason": "Art. 17 request"})
    assert done.status_code == 200, done.get_json()
    assert set(done.get_json()["plugins"]) == {"core", "sales"}
    with app.app_context():
        s = db.session
        contact = s.get(Contact, ids["ana"])
        assert (contact.first_name, contact.last_name, contact.email, contact.phone) == (
            "Erased", f"contact #{ids['ana']}", None, None)
        assert contact.tags == []
        assert s.scalar(select(Note.id).where(Note.contact_id == ids["ana"])) is None
        activity = s.scalar(select(Activity).where(Activity.type == "call"))
        assert (activity.subject, activity.payload) == ("(erased)", None)
        lead = s.get(Lead, ids["lead"])
        assert (lead.first_name, lead.email, lead.last_name) == (None, None, "Erased lead")
        task = s.scalar(select(Task))
        assert (task.subject, task.notes) == ("(erased)", None)
        deal = s.get(Deal, ids["deal"])
        assert (deal.contact_id, str(deal.amount)) == (ids["ana"], "250.00")  # figures kept
        # consent and the suppression of the address survive
        assert s.scalar(select(ConsentRecord.granted)) is False
        assert consent.email_hash("ana@example.com") in set(
            s.scalars(consent.suppressed_emails()))
        # nothing personal is left in the audit log
        dump = json.dumps([e.changes for e in s.scalars(select(AuditEntry))])
        assert "ana@example.com" not in dump.lower() and "Lopez" not in dump
        assert "Ana likes tea" not in dump and "mobile +34 600" not in dump
        erased = s.scalar(select(AuditEntry).where(AuditEntry.action == "erased"))
        assert erased.changes["reason"] == "Art. 17 request" and erased.username == "dpo"


def test_erase_page_asks_for_the_word_and_cli_exports_and_erases(site, web_login, tmp_path):
    app, client, headers, ids = site
    web = app.test_client()
    web_login(web, "dpo", "pw-123456")
    show = web.get(f"/contactview/show/{ids['ana']}").get_data(as_text=True)
    assert "Export personal data" in show and "Erase personal data" in show
    page = web.get(f"/privacy/{ids['ana']}/erase")
    token = csrf_token(page.get_data(as_text=True))
    wrong = web.post(f"/privacy/{ids['ana']}/erase", data={"csrf_token": token,
                                                            "confirm": "yes"})
    assert wrong.status_code == 400 and "Type ERASE to confirm." in wrong.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Contact, ids["ana"]).email == "ana@example.com"

    from flask.cli import ScriptInfo

    from trellis.cli import main

    runner = app.test_cli_runner()
    cli = lambda *args: runner.invoke(main, list(args),  # noqa: E731
                                      obj=ScriptInfo(create_app=lambda: app))
    out = tmp_path / "ana.zip"
    result = cli("privacy", "export", str(ids["ana"]), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "sales.json" in zipfile.ZipFile(out).namelist()
    result = cli("privacy", "erase", str(ids["ana"]), "--yes")
    assert result.exit_code == 0 and "erased" in result.output, result.output
    missing = cli("privacy", "erase", "999", "--yes")
    assert missing.exit_code == 1 and "No contact with id 999" in missing.output
    with app.app_context():
        assert db.session.get(Contact, ids["ana"]).email is None
