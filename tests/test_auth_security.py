"""Sign-in hardening: lock-out, two-factor login (TOTP), sessions that end on
logout and when idle, scoped API keys; and fields encrypted at rest."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from flask.cli import ScriptInfo
from sqlalchemy import select, text

from trellis.cli import main
from trellis.db import db
from trellis.models import AuditEntry, Contact, UserSecurity
from trellis.testing import csrf_token


@pytest.fixture
def site(trellis_app_factory, make_user):
    app = trellis_app_factory(plugins=["sales"], config={"TRELLIS_LOCKOUT_ATTEMPTS": 3,
                                                         "TRELLIS_LOCKOUT_MINUTES": 15})
    make_user(app, "bea", ["CRM User"])
    return app


def form_login(client, username, password):
    token = csrf_token(client.get("/login/").get_data(as_text=True))
    return client.post("/login/", data={"username": username, "password": password,
                                        "csrf_token": token})


def audit_actions(app, user="bea"):
    with app.app_context():
        db.session.remove()
        return [e.action for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.model == "user").order_by(AuditEntry.id))
            if (e.changes or {}).get("username") == user]


def cli(app, *args):
    return app.test_cli_runner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def test_an_account_locks_after_failed_logins_and_unlocks(site):
    client = site.test_client()
    for _ in range(3):
        assert form_login(client, "bea", "wrong").status_code == 302
    locked = form_login(client, "bea", "pw-123456")
    page = client.get(locked.headers["Location"]).get_data(as_text=True)
    assert "locked after too many failed logins" in page
    api = client.post("/api/v1/security/login", json={"username": "bea",
                                                       "password": "pw-123456",
                                                       "provider": "db"})
    assert api.status_code == 401
    assert audit_actions(site) == ["login_failed"] * 3 + ["locked", "login_locked",
                                                          "login_locked"]
    result = cli(site, "users", "unlock", "bea")
    assert result.exit_code == 0, result.output
    assert form_login(client, "bea", "pw-123456").headers["Location"] == "/"
    assert audit_actions(site)[-1] == "login"


def test_two_factor_login_on_the_web_and_the_api(site, web_login):
    web = site.test_client()
    web_login(web, "bea", "pw-123456")
    page = web.get("/twofactor/").get_data(as_text=True)
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    assert "<svg" in page  # the QR code is made by Trellis, not an outside service
    totp = pyotp.TOTP(secret)
    bad = web.post("/twofactor/enable", data={"csrf_token": csrf_token(page), "code": "000000"})
    assert "not valid" in web.get(bad.headers["Location"]).get_data(as_text=True)
    web.post("/twofactor/enable", data={"csrf_token": csrf_token(page), "code": totp.now()})
    assert 'id="totp-on"' in web.get("/twofactor/").get_data(as_text=True)
    with site.app_context():
        raw = db.session.execute(text("SELECT totp_secret FROM trellis_user_security")).scalar()
        assert raw and secret not in raw  # encrypted at rest

    client = site.test_client()
    step = form_login(client, "bea", "pw-123456")
    assert step.headers["Location"].endswith("/login/totp")
    assert client.get("/contactview/list/").status_code == 302  # not signed in yet
    form = client.get("/login/totp").get_data(as_text=True)
    wrong = client.post("/login/totp", data={"csrf_token": csrf_token(form), "code": "123456"})
    assert wrong.status_code == 400
    with site.app_context():  # the code used to enable is spent: wait for a fresh step
        db.session.remove()
        used = db.session.get(UserSecurity, site.appbuilder.sm.find_user("bea").id)
        while int(time.time()) // 30 <= used.totp_last_step:
            time.sleep(0.5)
    code = totp.now()
    ok = client.post("/login/totp", data={"csrf_token": csrf_token(form), "code": code})
    assert ok.status_code == 302
    assert client.get("/contactview/list/").status_code == 200
    # the same code never works twice
    other = site.test_client()
    form_login(other, "bea", "pw-123456")
    again = other.post("/login/totp", data={
        "csrf_token": csrf_token(other.get("/login/totp").get_data(as_text=True)),
        "code": code})
    assert again.status_code == 400
    # the JWT API wants the code too
    login = {"username": "bea", "password": "pw-123456", "provider": "db"}
    assert client.post("/api/v1/security/login", json=login).status_code == 401
    while pyotp.TOTP(secret).now() == code:
        time.sleep(0.5)
    assert client.post("/api/v1/security/login", json=login,
                       headers={"X-Trellis-OTP": totp.now()}).status_code == 200
    assert "login_2fa_failed" in audit_actions(site) and "totp_enabled" in audit_actions(site)


def test_logout_ends_every_earlier_session_and_idle_sessions_end(site, web_login):
    first = site.test_client()
    web_login(first, "bea", "pw-123456")
    stolen = site.test_client()
    stolen.set_cookie("session", first.get_cookie("session").value)
    assert stolen.get("/contactview/list/").status_code == 200
    first.get("/logout/")
    assert stolen.get("/contactview/list/").status_code == 302  # the copy died too

    site.config["TRELLIS_IDLE_MINUTES"] = 1
    idle = site.test_client()
    web_login(idle, "bea", "pw-123456")
    assert idle.get("/contactview/list/").status_code == 200
    with idle.session_transaction() as sess:
        sess["trellis_seen"] = time.time() - 120
    gone = idle.get("/contactview/list/")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]


def test_api_keys_do_only_what_their_scopes_allow(site, api_login):
    client = site.test_client()
    jwt = api_login(client)
    bad = client.post("/api/v1/security/api_keys/", headers=jwt,
                      json={"name": "bad", "scopes": "admin, sales:delete"})
    assert bad.status_code == 400 and "scopes" in bad.get_json()["message"]

    def key(scopes):
        created = client.post("/api/v1/security/api_keys/", headers=jwt,
                              json={"name": scopes, "scopes": scopes})
        assert created.status_code == 201, created.get_json()
        return {"Authorization": f"Bearer {created.get_json()['result']['key']}"}

    reader = key("read")
    assert client.get("/api/v1/contact/", headers=reader).status_code == 200
    assert client.post("/api/v1/contact/", headers=reader,
                       json={"first_name": "A", "last_name": "B"}).status_code == 403
    seller = key("sales:write")
    assert client.post("/api/v1/deal/", headers=seller, json={"name": "D"}).status_code == 201
    assert client.get("/api/v1/contact/", headers=seller).status_code == 403
    full = key("")
    assert client.post("/api/v1/contact/", headers=full,
                       json={"first_name": "A", "last_name": "B"}).status_code == 201


def test_sensitive_fields_are_encrypted_at_rest_kept_out_of_the_audit_and_keys_rotate(
        trellis_app_factory, api_login):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app = trellis_app_factory(config={"TRELLIS_ENCRYPTION_KEYS": old})
    client = app.test_client()
    admin = api_login(client)
    created = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "Ana", "last_name": "A", "national_id": "X1234567"})
    contact = created.get_json()["id"]
    assert client.get(f"/api/v1/contact/{contact}",
                      headers=admin).get_json()["result"]["national_id"] == "X1234567"
    client.put(f"/api/v1/contact/{contact}", headers=admin, json={"national_id": "Y7654321"})
    with app.app_context():
        raw = db.session.execute(text("SELECT national_id FROM trellis_contact")).scalar()
        assert "7654321" not in raw and Fernet(old.encode()).decrypt(raw.encode()) == \
            b"Y7654321"
        dump = str([e.changes for e in db.session.scalars(select(AuditEntry))])
        assert "X1234567" not in dump and "Y7654321" not in dump and "<encrypted>" in dump
    app.config["TRELLIS_ENCRYPTION_KEYS"] = f"{new},{old}"
    result = cli(app, "keys", "rotate")
    assert result.exit_code == 0 and "trellis_contact.national_id: 1 re-encrypted" in \
        result.output
    app.config["TRELLIS_ENCRYPTION_KEYS"] = new  # the old key is gone
    with app.app_context():
        db.session.remove()
        assert db.session.get(Contact, contact).national_id == "Y7654321"
    app.config["TRELLIS_ENCRYPTION_KEYS"] = old
    result = cli(app, "keys", "rotate")
    assert result.exit_code == 1 and "no configured key decrypts" in result.output
