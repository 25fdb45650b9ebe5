"""In-app notifications, "My preferences" and notification e-mail (a real SMTP
server: aiosmtpd)."""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
from sqlalchemy import select

from trellis.db import db, utcnow
from trellis.jobs import execute
from trellis.models import Notification, UserPreference
from trellis.notifications import EMAIL_JOB, notify
from trellis.testing import csrf_token, free_port


@pytest.fixture
def inbox(trellis_app_factory, make_user, api_login):
    def build(config=None):
        app = trellis_app_factory(config=config)
        ids = {"ann": make_user(app, "ann", ["CRM User"]),
               "bob": make_user(app, "bob", ["CRM User"]),
               "vic": make_user(app, "vic", ["CRM Viewer"])}
        with app.app_context():
            ids["admin"] = app.appbuilder.sm.find_user(username="admin").id
            for name, user_id in ids.items():
                for n in range(2):
                    notify(db.session, user_id, f"{name} note {n}", body=f"for {name}",
                           link=f"/contactview/show/{n + 1}", dedupe_key=f"test:{n}")
            db.session.commit()
        client = app.test_client()
        headers = {name: api_login(client, name, "pw-123456") for name in ("ann", "bob", "vic")}
        headers["admin"] = api_login(client)
        return app, client, headers, ids

    return build


def own_ids(app, user_id):
    with app.app_context():
        return db.session.scalars(select(Notification.id).where(
            Notification.user_id == user_id).order_by(Notification.id)).all()


def test_each_user_sees_and_marks_only_their_own_notifications(inbox):
    app, client, headers, ids = inbox()
    for name in ("ann", "bob", "vic", "admin"):
        body = client.get("/api/v1/notification/", headers=headers[name]).get_json()
        assert sorted(r["subject"] for r in body["result"]) == [f"{name} note 0",
                                                                 f"{name} note 1"], name
        assert body["count"] == 2 and body["unread"] == 2
    bobs = own_ids(app, ids["bob"])
    # the admin, who sees every record elsewhere, sees no one else's notifications
    assert client.get(f"/api/v1/notification/{bobs[0]}",
                      headers=headers["admin"]).status_code == 404
    assert client.post(f"/api/v1/notification/{bobs[0]}/read",
                       headers=headers["ann"]).status_code == 404
    response = client.post("/api/v1/notification/read", headers=headers["ann"],
                           json={"ids": [*bobs, *own_ids(app, ids["ann"])[:1]]})
    assert response.status_code == 200 and response.get_json() == {"count": 1, "unread": 1}
    assert client.get("/api/v1/notification/", headers=headers["bob"]).get_json()["unread"] == 2
    mine = own_ids(app, ids["ann"])[1]
    response = client.post(f"/api/v1/notification/{mine}/read", headers=headers["ann"])
    assert response.status_code == 200 and response.get_json()["read_at"]
    assert client.post("/api/v1/notification/read", headers=headers["vic"],
                       json={"all": True}).get_json() == {"count": 2, "unread": 0}
    for bad in ({}, {"ids": "1"}, {"ids": []}, {"ids": [1, "x"]}, {"all": "yes"}):
        response = client.post("/api/v1/notification/read", headers=headers["bob"], json=bad)
        assert response.status_code == 400, bad
        assert "ids" in response.get_json()["message"]
    assert client.post("/api/v1/notification/read", headers=headers["bob"],
                       data="[1]", content_type="application/json").status_code == 400
    # writing notifications through the API is not offered
    assert client.post("/api/v1/notification/", headers=headers["admin"],
                       json={"user_id": ids["bob"], "subject": "x"}).status_code in (404, 405)
    assert client.get("/api/v1/notification/").status_code == 401


def test_notifications_page_opens_links_and_marks_read(inbox, web_login):
    app, client, _, ids = inbox()
    web_login(client, "bob", "pw-123456")
    page = client.get("/notifications/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "bob note 0" in html and "ann note" not in html and "admin note" not in html
    assert '<span class="badge" id="trellis-unread">2</span>' in html  # the navbar's bell
    anns = own_ids(app, ids["ann"])
    assert client.get(f"/notifications/open/{anns[0]}").status_code == 404
    bobs = own_ids(app, ids["bob"])
    opened = client.get(f"/notifications/open/{bobs[1]}")
    assert opened.status_code == 302 and opened.headers["Location"] == "/contactview/show/2"
    with app.app_context():
        assert db.session.get(Notification, bobs[1]).read_at is not None
        assert db.session.get(Notification, bobs[0]).read_at is None
    token = csrf_token(html)
    assert client.post("/notifications/read", data={"id": [str(bobs[0]), str(anns[1])]}
                       ).status_code == 400  # no CSRF token
    response = client.post("/notifications/read",
                           data={"csrf_token": token, "id": [str(bobs[0]), str(anns[1])]})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Notification, bobs[0]).read_at is not None
        assert db.session.get(Notification, anns[1]).read_at is None  # not bob's
    html = client.get("/contactview/list/").get_data(as_text=True)
    assert 'id="trellis-notifications"' in html and 'id="trellis-unread"' not in html
    assert 'class="unread"' not in client.get("/notifications/").get_data(as_text=True)


def test_preferences_api_and_page(inbox, web_login):
    app, client, headers, ids = inbox()
    assert client.get("/api/v1/preferences/", headers=headers["vic"]).get_json()["result"] == {
        "email_notifications": False, "locale": None, "timezone": None}
    bad = client.put("/api/v1/preferences/", headers=headers["vic"],
                     json={"email_notifications": "often", "timezone": "Mars/Olympus",
                           "locale": "english"})
    assert bad.status_code == 400
    assert set(bad.get_json()["message"]) == {"email_notifications", "timezone", "locale"}
    assert client.put("/api/v1/preferences/", headers=headers["vic"], json=[1]).status_code == 400
    good = client.put("/api/v1/preferences/", headers=headers["vic"],
                      json={"email_notifications": True, "timezone": "Europe/Berlin"})
    assert good.status_code == 200
    assert good.get_json()["result"] == {"email_notifications": True, "locale": None,
                                         "timezone": "Europe/Berlin"}
    # each user's own: ann's are untouched
    assert client.get("/api/v1/preferences/", headers=headers["ann"]).get_json()["result"][
        "email_notifications"] is False
    web_login(client, "ann", "pw-123456")
    page = client.get("/preferences/")
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    rejected = client.post("/preferences/", data={"csrf_token": token, "timezone": "Nowhere"})
    assert rejected.status_code == 200 and "Unknown time zone" in rejected.get_data(as_text=True)
    saved = client.post("/preferences/", data={"csrf_token": token, "email_notifications": "on",
                                               "timezone": "UTC"})
    assert saved.status_code == 302
    with app.app_context():
        pref = db.session.get(UserPreference, ids["ann"])
        assert (pref.email_notifications, pref.timezone) == (True, "UTC")


def test_notification_and_preference_permissions_come_with_the_basic_roles(
        trellis_app_factory, make_user, api_login):
    app = trellis_app_factory()
    make_user(app, "nobody", ["Public"])
    client = app.test_client()
    headers = api_login(client, "nobody", "pw-123456")
    assert client.get("/api/v1/notification/", headers=headers).status_code == 403
    assert client.get("/api/v1/preferences/", headers=headers).status_code == 403
    with app.app_context():
        sm = app.appbuilder.sm
        for role in ("CRM User", "CRM Viewer"):
            granted = {(p.permission.name, p.view_menu.name)
                       for p in sm.find_role(role).permissions}
            assert {("can_read", "core.Notification"), ("can_write", "core.Notification"),
                    ("can_read", "core.Preference"), ("can_write", "core.Preference")} <= granted


def _want_email(app, *user_ids):
    with app.app_context():
        for user_id in user_ids:
            db.session.merge(UserPreference(user_id=user_id, email_notifications=True))
        db.session.commit()


def test_notifications_are_emailed_once_to_users_who_want_it(inbox, smtp_server):
    controller, received = smtp_server
    app, client, headers, ids = inbox(config={
        "TRELLIS_SMTP_HOST": controller.hostname, "TRELLIS_SMTP_PORT": controller.port,
        "TRELLIS_MAIL_FROM": "crm@example.com", "TRELLIS_BASE_URL": "https://crm.example.com"})
    _want_email(app, ids["ann"], ids["bob"])
    with app.app_context():
        bobs = own_ids(app, ids["bob"])
        db.session.get(Notification, bobs[0]).read_at = utcnow()  # read already: not mailed
        old = notify(db.session, ids["ann"], "ancient", dedupe_key="old")
        db.session.flush()
        old.created_on = utcnow() - timedelta(days=30)  # too old to mail
        db.session.commit()
        assert execute(EMAIL_JOB, {}) == 2
        assert execute(EMAIL_JOB, {}) == 0  # idempotent
        emailed = set(db.session.scalars(select(Notification.id).where(
            Notification.emailed_at.is_not(None))))
    assert emailed == {*own_ids(app, ids["ann"])[:2], bobs[1]}
    by_rcpt = {tuple(e.rcpt_tos): e for e in received.envelopes}
    assert set(by_rcpt) == {("ann@example.com",), ("bob@example.com",)}
    ann = by_rcpt[("ann@example.com",)].content.decode()
    assert "Subject: [Trellis] 2 new notifications" in ann and "From: crm@example.com" in ann
    assert "ann note 0" in ann and "ann note 1" in ann and "ancient" not in ann
    assert "https://crm.example.com/contactview/show/1" in ann
    bob = by_rcpt[("bob@example.com",)].content.decode()
    assert "Subject: [Trellis] bob note 1" in bob and "bob note 0" not in bob
    # a new notification goes out on the next run, alone
    with app.app_context():
        notify(db.session, ids["ann"], "fresh one")
        db.session.commit()
        assert execute(EMAIL_JOB, {}) == 1
    assert "Subject: [Trellis] fresh one" in received.envelopes[-1].content.decode()
    assert len(received.envelopes) == 3


def test_without_smtp_or_when_it_is_down_nothing_is_marked_emailed(inbox):
    app, _, _, ids = inbox(config={"TRELLIS_MAIL_OUTBOX": "off"})
    _want_email(app, ids["ann"])
    with app.app_context():
        assert execute(EMAIL_JOB, {}) == 0  # no SMTP host, no outbox: stays in-app
        assert db.session.scalar(select(Notification.id).where(
            Notification.emailed_at.is_not(None))) is None
        app.config.update(TRELLIS_SMTP_HOST="127.0.0.1", TRELLIS_SMTP_PORT=free_port())
        with pytest.raises(OSError):
            execute(EMAIL_JOB, {})  # nobody listening: the claim is undone for the next run
        db.session.remove()
        assert db.session.scalar(select(Notification.id).where(
            Notification.emailed_at.is_not(None))) is None


def test_notification_links_stay_inside_trellis(trellis_app_factory):
    app = trellis_app_factory()
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username="admin").id
        for link in ("https://evil.example/", "//evil.example/", "javascript:alert(1)",
                     "/\\evil.example"):
            with pytest.raises(ValueError):
                notify(db.session, user_id, "x", link=link)


def test_without_an_smtp_host_mail_lands_in_the_outbox_folder(inbox, tmp_path):
    """The embedded default: nothing leaves the machine, every message is an .eml file."""
    outbox = tmp_path / "mail-out"
    app, _, _, ids = inbox(config={"TRELLIS_MAIL_OUTBOX": str(outbox)})
    _want_email(app, ids["ann"])
    with app.app_context():
        assert execute(EMAIL_JOB, {}) == 1
        assert execute(EMAIL_JOB, {}) == 0  # claimed once, like over SMTP
    files = list(outbox.glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes())
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "[Trellis] 2 new notifications"
