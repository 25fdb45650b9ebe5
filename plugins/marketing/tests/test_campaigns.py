"""Templates and campaigns on SQLite with a real SMTP server (aiosmtpd) and jobs
run in-process: who gets what, personalisation, List-Unsubscribe, the open
pixel, signed click redirects (no open redirect), one-click unsubscribe, the
timeline."""

from __future__ import annotations

import re

from datetime import timedelta

from sqlalchemy import func, select, update

from trellis import consent
from trellis.db import db, utcnow
from trellis.models import Activity, Contact
from trellis_marketing.models import Campaign, Message

from conftest import seed_people


def _app(trellis_app_factory, smtp_sink, **kw):
    return trellis_app_factory(plugins=["sales", "marketing"], config={
        "TRELLIS_SMTP_HOST": "127.0.0.1", "TRELLIS_SMTP_PORT": smtp_sink.port,
        "TRELLIS_BASE_URL": "https://crm.example.com"}, **kw)


TEMPLATE = {
    "name": "Spring", "subject": "Hi {{ contact.first_name | default('friend', true) }}",
    "text_body": "Dear {{ contact.name }} of {{ account.name | default('your company', true) }}.\n"
                 "Leave: {{ unsubscribe_url }}",
    "html_body": "<html><body><p>Hello {{ contact.first_name }}</p>"
                 "<a href=\"https://shop.example.com/spring?x=1&amp;y=2\">Shop</a></body></html>",
}


def test_campaign_sends_once_to_each_eligible_contact_and_tracks(trellis_app_factory,
                                                                  smtp_sink, api_login,
                                                                  make_user):
    app = _app(trellis_app_factory, smtp_sink)
    ids = seed_people(app)  # bob has no e-mail address
    make_user(app, "mk", ["Marketer"])
    client = app.test_client()
    headers = api_login(client, "mk", "pw-123456")
    with app.app_context():  # cat unsubscribed earlier
        consent.record(db.session, ids["cat"], "email", "marketing", False, source="test")
        db.session.commit()

    bad = client.post("/api/v1/email_template/", headers=headers,
                      json={**TEMPLATE, "subject": "{% include 'x' %}"})
    assert bad.status_code == 400 and "subject" in bad.get_json()["message"]
    template = client.post("/api/v1/email_template/", headers=headers, json=TEMPLATE)
    assert template.status_code == 201, template.get_json()
    tid = template.get_json()["id"]
    preview = client.post(f"/api/v1/email_template/{tid}/preview", headers=headers,
                          json={"contact_id": ids["ann"]})
    assert preview.status_code == 200, preview.get_json()
    assert preview.get_json()["subject"] == "Hi Ann"
    assert "Dear Ann Alder of Acme." in preview.get_json()["text"]
    assert client.post(f"/api/v1/email_template/{tid}/preview", headers=headers,
                       json={"contact_id": 999999}).status_code == 400

    segment = client.post("/api/v1/segment/", headers=headers, json={
        "name": "Everyone", "rules": {"not": {"type": "tag", "tag": "nobody-has-this"}}})
    sid = segment.get_json()["id"]
    campaign = client.post("/api/v1/campaign/", headers=headers, json={
        "name": "Spring sale", "segment_id": sid, "template_id": tid, "cost": "10.00"})
    assert campaign.status_code == 201, campaign.get_json()
    cid = campaign.get_json()["id"]

    sent = client.post(f"/api/v1/campaign/{cid}/send", headers=headers)
    assert sent.status_code == 200, sent.get_json()
    assert sent.get_json() == {"started": True, "queued": 3}  # ann, dan, eve
    assert sorted(smtp_sink.to()) == ["ann@acme.com", "dan@acme.com", "eve@x.org"]
    assert client.post(f"/api/v1/campaign/{cid}/send", headers=headers).status_code == 400

    by_to = {rcpts[0]: msg for rcpts, msg in smtp_sink.messages}
    ann = by_to["ann@acme.com"]
    assert ann["Subject"] == "Hi Ann"
    assert ann["List-Unsubscribe"].startswith("<https://crm.example.com/marketing/t/u/")
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Dear Ann Alder of Acme." in ann.get_body(("plain",)).get_content()
    assert "Dear Eve Elm of your company." in \
        by_to["eve@x.org"].get_body(("plain",)).get_content()
    html = ann.get_body(("html",)).get_content()
    assert "shop.example.com" not in html  # links go through the redirect
    click = re.search(r'href="https://crm.example.com(/marketing/t/c/[^"]+)"', html).group(1)
    pixel = re.search(r'src="https://crm.example.com(/marketing/t/o/[^"]+)"', html).group(1)
    unsubscribe = ann["List-Unsubscribe"][len("<https://crm.example.com"):-1]

    with app.app_context():
        statuses = dict(db.session.execute(select(Message.email, Message.status)).all())
        assert statuses == {"ann@acme.com": "sent", "dan@acme.com": "sent",
                            "eve@x.org": "sent"}
        assert db.session.get(Campaign, cid).status == "sent"

    anon = app.test_client()
    assert anon.get(pixel).mimetype == "image/gif"
    assert anon.get(pixel).status_code == 200  # a second open counts once
    redirect = anon.get(click)
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == "https://shop.example.com/spring?x=1&y=2"
    forged = click[:-3] + ("AAA" if not click.endswith("AAA") else "BBB")
    assert anon.get(forged).status_code == 404
    with app.app_context():  # a token signed for another purpose is no click link
        from trellis import signing

        other = signing.sign("marketing-open", {"m": 1, "u": "https://evil.example"})
    assert anon.get(f"/marketing/t/c/{other}").status_code == 404

    page = anon.get(unsubscribe)
    assert page.status_code == 200 and b"<form method='post'>" in page.data
    with app.app_context():
        assert consent.is_allowed(db.session, ids["ann"], "email", "marketing")
    done = anon.post(unsubscribe, data="List-Unsubscribe=One-Click",
                     content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200
    with app.app_context():
        assert not consent.is_allowed(db.session, ids["ann"], "email", "marketing")
        message = db.session.scalar(select(Message).where(Message.email == "ann@acme.com"))
        assert message.status == "unsubscribed"
        assert message.opened_at and message.clicked_at and message.unsubscribed_at
        timeline = db.session.scalars(select(Activity.type).where(
            Activity.contact_id == ids["ann"], Activity.plugin == "marketing")
            .order_by(Activity.id)).all()
        assert timeline == ["email.opened", "email.clicked", "email.unsubscribed"]

    # a second campaign to the same segment: ann and cat unsubscribed, bob has no address
    second = client.post("/api/v1/campaign/", headers=headers, json={
        "name": "Summer", "segment_id": sid, "template_id": tid})
    smtp_sink.messages.clear()
    result = client.post(f"/api/v1/campaign/{second.get_json()['id']}/send", headers=headers)
    assert result.get_json()["queued"] == 2
    assert sorted(smtp_sink.to()) == ["dan@acme.com", "eve@x.org"]


def test_recipients_refused_by_the_server_are_bounced_and_never_mailed_again(
        trellis_app_factory, smtp_sink, api_login):
    app = _app(trellis_app_factory, smtp_sink)
    ids = seed_people(app)

    async def refuse(server, session, envelope, address, rcpt_options):
        if address.startswith("dan@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp_sink.handle_RCPT = refuse
    client = app.test_client()
    headers = api_login(client)
    tid = client.post("/api/v1/email_template/", headers=headers, json=TEMPLATE).get_json()["id"]
    sid = client.post("/api/v1/segment/", headers=headers, json={
        "name": "Acme", "rules": {"type": "field", "field": "account.name", "op": "eq",
                                  "value": "acme"}}).get_json()["id"]
    for name in ("One", "Two"):
        cid = client.post("/api/v1/campaign/", headers=headers, json={
            "name": name, "segment_id": sid, "template_id": tid}).get_json()["id"]
        client.post(f"/api/v1/campaign/{cid}/send", headers=headers)
    assert smtp_sink.to() == ["ann@acme.com", "ann@acme.com"]
    with app.app_context():
        rows = db.session.execute(select(Message.campaign_id, Message.email, Message.status)
                                  .order_by(Message.id)).all()
        assert [(r[1], r[2]) for r in rows] == [("ann@acme.com", "sent"),
                                                ("dan@acme.com", "bounced"),
                                                ("ann@acme.com", "sent")]
        assert ids["dan"] == db.session.scalar(select(Contact.id).where(
            Contact.email == "dan@acme.com"))


def _contacts(app, n):
    with app.app_context():
        from sqlalchemy import insert

        now = utcnow()
        db.session.execute(insert(Contact), [
            {"first_name": f"C{i}", "last_name": "X", "email": f"c{i}@example.com",
             "created_on": now, "updated_on": now} for i in range(n)])
        db.session.commit()


def _campaign(client, headers, extra):
    a = client.post("/api/v1/email_template/", headers=headers, json={
        "name": "A", "subject": "Subject A", "text_body": "a"}).get_json()["id"]
    b = client.post("/api/v1/email_template/", headers=headers, json={
        "name": "B", "subject": "Subject B", "text_body": "b"}).get_json()["id"]
    sid = client.post("/api/v1/segment/", headers=headers, json={
        "name": "All", "rules": {"type": "field", "field": "email", "op": "is_not_empty"}}
    ).get_json()["id"]
    response = client.post("/api/v1/campaign/", headers=headers, json={
        "name": "AB", "segment_id": sid, "template_id": a, **extra(b)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_ab_test_sends_the_winner_to_the_rest(trellis_app_factory, smtp_sink, api_login):
    from trellis.jobs import execute
    from trellis_marketing import campaigns

    app = _app(trellis_app_factory, smtp_sink)
    _contacts(app, 200)  # ids 1..200: 40 with id % 100 < 20 (20 even: A, 20 odd: B)
    client = app.test_client()
    headers = api_login(client)
    cid = _campaign(client, headers, lambda b: {"template_b_id": b, "ab_test_percent": 20,
                                    "ab_metric": "opened", "ab_wait_hours": 4})
    assert client.post(f"/api/v1/campaign/{cid}/send", headers=headers).get_json() == {
        "started": True, "queued": 200}
    subjects = [m["Subject"] for _, m in smtp_sink.messages]
    assert subjects.count("Subject A") == 20 and subjects.count("Subject B") == 20
    with app.app_context():
        held = db.session.scalar(select(func.count()).where(Message.status == "held"))
        assert held == 160
        b_ids = db.session.scalars(select(Message.id).where(Message.variant == "B")).all()
        for mid in b_ids[:5]:
            campaigns.record_open(db.session, mid)
        a_ids = db.session.scalars(select(Message.id).where(Message.variant == "A")).all()
        campaigns.record_open(db.session, a_ids[0])
        db.session.commit()
        execute("marketing.recover", {})  # too early: the test runs 4 hours
        assert db.session.get(Campaign, cid).ab_winner is None
        db.session.execute(update(Campaign).values(started_at=utcnow() - timedelta(hours=5)))
        db.session.commit()
        execute("marketing.recover", {})
        db.session.remove()
        campaign = db.session.get(Campaign, cid)
        assert campaign.ab_winner == "B" and campaign.status == "sent"
    subjects = [m["Subject"] for _, m in smtp_sink.messages]
    assert len(subjects) == 200 and subjects.count("Subject B") == 180
    assert len(set(smtp_sink.to())) == 200


def test_scheduled_campaign_starts_when_due_and_sending_is_throttled(trellis_app_factory,
                                                                    smtp_sink, api_login):
    import time

    from trellis.jobs import execute
    from trellis.settings import update_settings

    app = _app(trellis_app_factory, smtp_sink)
    _contacts(app, 6)
    with app.app_context():
        update_settings("marketing", {"send_rate_per_minute": 300})  # one per 0.2 s
    client = app.test_client()
    headers = api_login(client)
    later = (utcnow() + timedelta(hours=1)).isoformat()
    cid = _campaign(client, headers, lambda b: {"scheduled_at": later})
    with app.app_context():
        assert db.session.get(Campaign, cid).status == "scheduled"
        execute("marketing.recover", {})
        assert smtp_sink.to() == []
        db.session.execute(update(Campaign).values(scheduled_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
        began = time.monotonic()
        execute("marketing.recover", {})
        elapsed = time.monotonic() - began
    assert len(smtp_sink.to()) == 6
    assert elapsed >= 5 * 0.2 - 0.05, elapsed  # six sends, five intervals


def test_personal_data_and_erasure(trellis_app_factory, smtp_sink, api_login):
    app = _app(trellis_app_factory, smtp_sink)
    _contacts(app, 1)
    client = app.test_client()
    headers = api_login(client)
    cid = _campaign(client, headers, lambda b: {})
    client.post(f"/api/v1/campaign/{cid}/send", headers=headers)
    with app.app_context():
        from trellis_marketing.privacy import erase, personal_data

        data = personal_data(db.session, 1)
        assert [(m["campaign"], m["email"], m["status"]) for m in data["messages"]] == [
            ("AB", "c0@example.com", "sent")]
        erase(db.session, 1)
        db.session.commit()
        assert personal_data(db.session, 1)["messages"][0]["email"] == ""


def test_send_now_from_the_campaign_list(trellis_app_factory, smtp_sink, api_login, web_login,
                                         make_user):
    from trellis.testing import csrf_token

    app = _app(trellis_app_factory, smtp_sink)
    _contacts(app, 3)
    make_user(app, "mk", ["Marketer"])
    make_user(app, "reader", ["CRM User"])
    client = app.test_client()
    cid = _campaign(client, api_login(client), lambda b: {})
    web = app.test_client()
    web_login(web, "mk", "pw-123456")
    token = csrf_token(web.get("/campaignview/list/").get_data(as_text=True))
    done = web.post("/campaignview/action_post", data={
        "action": "send_now", "rowid": [str(cid)], "csrf_token": token})
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
    assert sorted(smtp_sink.to()) == ["c0@example.com", "c1@example.com", "c2@example.com"]
    again = web.post("/campaignview/action_post", data={
        "action": "send_now", "rowid": [str(cid)], "csrf_token": token})
    assert again.status_code == 302 and len(smtp_sink.to()) == 3
    reader = app.test_client()
    web_login(reader, "reader", "pw-123456")
    assert reader.get("/campaignview/list/").status_code in (302, 403)
