"""Journeys: the canonical coupon case under a controlled clock (views a product,
has not bought it within 24 hours -> one coupon e-mail; buys within the wait ->
nothing), durable per-contact state, no double enrolment, step validation; on
SQLite and PostgreSQL with a real SMTP server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from trellis.db import db, utcnow
from trellis.jobs import execute
from trellis.models import Activity, Contact, Tag
from trellis_marketing.models import JourneyEnrolment, Message


def _coupon_case(app, smtp_sink, api_login):
    from trellis_sales.models import Order, OrderLine, Product

    t0 = utcnow().replace(microsecond=0)
    with app.app_context():
        chair, lamp = Product(sku="CH", name="Chair"), Product(sku="LA", name="Lamp")
        ann = Contact(first_name="Ann", last_name="A", email="ann@example.com")
        dan = Contact(first_name="Dan", last_name="D", email="dan@example.com")
        liz = Contact(first_name="Liz", last_name="L", email="liz@example.com")
        db.session.add_all([chair, lamp, ann, dan, liz])
        db.session.flush()
        ids = {"ann": ann.id, "dan": dan.id, "liz": liz.id, "chair": chair.id, "lamp": lamp.id}
        db.session.commit()

    client = app.test_client()
    headers = api_login(client)
    tid = client.post("/api/v1/email_template/", headers=headers, json={
        "name": "Coupon", "subject": "10% off for you, {{ contact.first_name }}",
        "text_body": "Use code CHAIR10."}).get_json()["id"]
    bad = client.post("/api/v1/journey/", headers=headers, json={
        "name": "Bad", "trigger_activity_type": "product.viewed",
        "steps": [{"type": "wait", "hours": 1}, {"type": "send_email", "template_id": 999},
                  {"type": "action", "action": "core.add_tag", "params": {}}]})
    assert bad.status_code == 400
    assert set(bad.get_json()["message"]) == {"steps.1.template_id", "steps.2.params.tag"}
    journey = client.post("/api/v1/journey/", headers=headers, json={
        "name": "Viewed, not bought", "trigger_kind": "activity",
        "trigger_activity_type": "product.viewed",
        "steps": [{"type": "wait_until", "until": "purchase", "product": "$trigger.product_id",
                   "hours": 24, "then": "exit"},
                  {"type": "send_email", "template_id": tid},
                  {"type": "action", "action": "core.add_tag",
                   "params": {"tag": "coupon-sent"}}]})
    assert journey.status_code == 201, journey.get_json()
    jid = journey.get_json()["id"]

    def view(who, product, at):
        with app.app_context():
            db.session.add(Activity(type="product.viewed", subject="viewed",
                                    contact_id=ids[who], occurred_at=at, plugin="test",
                                    payload={"product_id": ids[product]}))
            db.session.commit()

    def buy(who, product, at):
        with app.app_context():
            order = Order(contact_id=ids[who], ordered_at=at, total=Decimal("90"))
            order.lines.append(OrderLine(product_id=ids[product], quantity=1,
                                         unit_price=Decimal("90"), total=Decimal("90")))
            db.session.add(order)
            db.session.commit()

    def tick(at):
        with app.app_context():
            return execute("marketing.journeys", {"now": at.isoformat()})

    def state():
        with app.app_context():
            db.session.remove()
            rows = db.session.execute(select(JourneyEnrolment.contact_id,
                                             JourneyEnrolment.status, JourneyEnrolment.step)
                                      .where(JourneyEnrolment.journey_id == jid)).all()
            names = {ids[k]: k for k in ("ann", "dan", "liz")}
            return {names[c]: (s, step) for c, s, step in rows}

    view("ann", "chair", t0)
    view("dan", "chair", t0)
    view("liz", "chair", t0)
    assert tick(t0 + timedelta(minutes=1)) == {"enrolled": 3, "moved": 0}
    assert state() == {"ann": ("active", 0), "dan": ("active", 0), "liz": ("active", 0)}

    buy("dan", "chair", t0 + timedelta(hours=2))   # buys the product within the wait
    buy("liz", "lamp", t0 + timedelta(hours=3))    # buys something else: still gets it
    view("ann", "chair", t0 + timedelta(hours=5))  # views again: not enrolled twice
    assert tick(t0 + timedelta(hours=6))["enrolled"] == 0
    assert state() == {"ann": ("active", 0), "dan": ("exited", 0), "liz": ("active", 0)}
    tick(t0 + timedelta(hours=23, minutes=59))
    assert smtp_sink.to() == []

    result = tick(t0 + timedelta(hours=24, minutes=1))
    assert result["enrolled"] == 0
    assert state() == {"ann": ("done", 3), "dan": ("exited", 0), "liz": ("done", 3)}
    assert sorted(smtp_sink.to()) == ["ann@example.com", "liz@example.com"]
    subjects = sorted(m["Subject"] for _, m in smtp_sink.messages)
    assert subjects == ["10% off for you, Ann", "10% off for you, Liz"]
    with app.app_context():
        tagged = db.session.scalars(select(Contact.first_name).join(Contact.tags)
                                    .where(Tag.name == "coupon-sent")
                                    .order_by(Contact.first_name)).all()
        assert tagged == ["Ann", "Liz"]
        assert db.session.scalar(select(Message.status).where(
            Message.contact_id == ids["ann"], Message.journey_id == jid)) == "sent"
        assert db.session.scalar(select(JourneyEnrolment.exit_reason).where(
            JourneyEnrolment.contact_id == ids["dan"])) == "purchase during the wait"

    # later ticks change nothing: durable state, one message per contact and step
    tick(t0 + timedelta(hours=48))
    with app.app_context():
        execute("marketing.send_journey_messages", {})
    assert sorted(smtp_sink.to()) == ["ann@example.com", "liz@example.com"]
    figures = client.get(f"/api/v1/journey/{jid}/metrics", headers=headers).get_json()
    assert figures["enrolments"] == {"done": 2, "exited": 1}
    assert (figures["sent"], figures["delivered"], figures["opened"]) == (2, 2, 0)


def test_coupon_journey_on_sqlite(trellis_app_factory, smtp_sink, api_login):
    app = trellis_app_factory(plugins=["sales", "marketing"], config={
        "TRELLIS_SMTP_HOST": "127.0.0.1", "TRELLIS_SMTP_PORT": smtp_sink.port})
    _coupon_case(app, smtp_sink, api_login)


@pytest.mark.postgres
def test_coupon_journey_on_postgres(trellis_app_factory, postgres_url, smtp_sink, api_login):
    app = trellis_app_factory(plugins=["sales", "marketing"], database_url=postgres_url,
                              config={"TRELLIS_SMTP_HOST": "127.0.0.1",
                                      "TRELLIS_SMTP_PORT": smtp_sink.port})
    _coupon_case(app, smtp_sink, api_login)


def test_event_trigger_enrols_the_events_contact_once(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["sales", "marketing"])
    client = app.test_client()
    headers = api_login(client)
    journey = client.post("/api/v1/journey/", headers=headers, json={
        "name": "New leads", "trigger_kind": "event", "trigger_event": "contact.created",
        "steps": [{"type": "action", "action": "core.add_tag", "params": {"tag": "welcomed"}}]})
    assert journey.status_code == 201, journey.get_json()
    created = client.post("/api/v1/contact/", headers=headers, json={
        "first_name": "Nia", "last_name": "New", "email": "nia@example.com"})
    assert created.status_code == 201, created.get_json()
    with app.app_context():
        rows = db.session.execute(select(JourneyEnrolment.contact_id, JourneyEnrolment.status)
                                  ).all()
        assert rows == [(created.get_json()["id"], "active")]
        execute("marketing.journeys", {})
        assert db.session.scalar(select(JourneyEnrolment.status)) == "done"
        contact = db.session.get(Contact, created.get_json()["id"])
        assert [t.name for t in contact.tags] == ["welcomed"]


def test_webhook_step_posts_the_contacts_through_the_guard(trellis_app_factory, api_login):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            received.append((self.headers["X-Trellis-Journey"],
                             json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = trellis_app_factory(plugins=["marketing"])
        client = app.test_client()
        headers = api_login(client)
        url = f"http://127.0.0.1:{server.server_port}/hook"
        refused = client.post("/api/v1/journey/", headers=headers, json={
            "name": "Hook", "trigger_kind": "event", "trigger_event": "contact.created",
            "steps": [{"type": "webhook", "url": url}]})
        assert refused.status_code == 400  # loopback is internal until an admin allows it
        assert "steps.0.url" in refused.get_json()["message"]
        with app.app_context():
            from trellis.settings import update_settings

            update_settings("core", {"allowed_private_networks": "127.0.0.0/8"})
        journey = client.post("/api/v1/journey/", headers=headers, json={
            "name": "Hook", "trigger_kind": "event", "trigger_event": "contact.created",
            "steps": [{"type": "webhook", "url": url}]})
        assert journey.status_code == 201, journey.get_json()
        contact = client.post("/api/v1/contact/", headers=headers, json={
            "first_name": "Wes", "last_name": "Hook", "email": "wes@example.com"}).get_json()
        with app.app_context():
            execute("marketing.journeys", {})
            assert db.session.scalar(select(JourneyEnrolment.status)) == "done"
        assert len(received) == 1
        header, body = received[0]
        assert header == str(journey.get_json()["id"])
        assert [(c["contact_id"], c["email"]) for c in body["contacts"]] == [
            (contact["id"], "wes@example.com")]
    finally:
        server.shutdown()


def _segment_change_case(app, api_login):
    """Journeys on entering and on leaving a dynamic segment, and the
    ``segment.left`` event, through four ticks with hand-computed enrolments."""
    t0 = utcnow().replace(microsecond=0)
    with app.app_context():
        vip = Tag(name="VIP")
        ann = Contact(first_name="Ann", last_name="A", email="ann@example.com", tags=[vip])
        bob = Contact(first_name="Bob", last_name="B", email="bob@example.com")
        db.session.add_all([ann, bob])
        db.session.commit()
        ids = {"ann": ann.id, "bob": bob.id}
    client = app.test_client()
    headers = api_login(client)
    segment = client.post("/api/v1/segment/", headers=headers, json={
        "name": "VIPs", "rules": {"type": "tag", "tag": "VIP"}, "emit_events": True})
    assert segment.status_code == 201, segment.get_json()
    sid = segment.get_json()["id"]

    def journey(name, **trigger):
        tag = {"type": "action", "action": "core.add_tag", "params": {"tag": name}}
        answer = client.post("/api/v1/journey/", headers=headers,
                             json={"name": name, "steps": [tag], **trigger})
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["id"]

    bad = client.post("/api/v1/journey/", headers=headers, json={
        "name": "Bad", "trigger_kind": "segment", "trigger_segment_id": sid,
        "trigger_segment_change": "stayed", "steps": [{"type": "wait", "hours": 1}]})
    assert bad.status_code == 400
    assert "trigger_segment_change" in bad.get_json()["message"]
    welcome = journey("welcome", trigger_kind="segment", trigger_segment_id=sid,
                      allow_reentry=True)
    lost = journey("lost", trigger_kind="segment", trigger_segment_id=sid,
                   trigger_segment_change="left")
    by_event = journey("left-event", trigger_kind="event", trigger_event="segment.left")

    def tick(minutes):
        with app.app_context():
            execute("marketing.journeys", {"now": (t0 + timedelta(minutes=minutes)).isoformat()})

    def entries():
        with app.app_context():
            db.session.remove()
            names = {v: k for k, v in ids.items()}
            rows = db.session.execute(select(JourneyEnrolment.journey_id,
                                             JourneyEnrolment.contact_id,
                                             JourneyEnrolment.entry_no)).all()
            return sorted((j, names[c], n) for j, c, n in rows)

    def retag(who, present):
        with app.app_context():
            contact = db.session.get(Contact, ids[who])
            tag = db.session.scalar(select(Tag).where(Tag.name == "VIP"))
            if present:
                contact.tags.append(tag)
            else:
                contact.tags.remove(tag)
            db.session.commit()

    tick(1)  # ann is a member already: welcomed; nobody left (the first pass only looks)
    assert entries() == [(welcome, "ann", 1)]
    retag("ann", False)
    retag("bob", True)
    tick(2)  # bob entered; ann left: the "left" journey and the segment.left event
    assert entries() == sorted([(welcome, "ann", 1), (welcome, "bob", 1), (lost, "ann", 1),
                                (by_event, "ann", 1)])
    retag("ann", True)
    tick(3)  # ann entered again (re-entry allowed); bob stayed: not enrolled again
    tick(4)
    assert entries() == sorted([(welcome, "ann", 1), (welcome, "bob", 1), (lost, "ann", 1),
                                (by_event, "ann", 1), (welcome, "ann", 2)])
    with app.app_context():
        ann = db.session.get(Contact, ids["ann"])
        assert {t.name for t in ann.tags} == {"VIP", "welcome", "lost", "left-event"}


def test_segment_entered_and_left_on_sqlite(trellis_app_factory, api_login):
    _segment_change_case(trellis_app_factory(plugins=["marketing"]), api_login)


@pytest.mark.postgres
def test_segment_entered_and_left_on_postgres(trellis_app_factory, postgres_url, api_login):
    _segment_change_case(trellis_app_factory(plugins=["marketing"], database_url=postgres_url),
                         api_login)


def test_a_marketer_adds_and_edits_a_journey_in_the_web_ui(trellis_app_factory, make_user,
                                                           web_login):
    """Steps are JSON text: broken JSON and broken steps come back under their
    field with the input kept; a valid journey is stored and can be edited."""
    import json

    from trellis.testing import csrf_token
    from trellis_marketing.models import EmailTemplate, Journey

    app = trellis_app_factory(plugins=["marketing"])
    make_user(app, "mara", ["Marketer"])
    with app.app_context():
        template = EmailTemplate(name="Welcome", subject="Hi", text_body="Hello")
        db.session.add(template)
        db.session.commit()
        tid = template.id
    client = app.test_client()
    web_login(client, "mara", "pw-123456")
    token = csrf_token(client.get("/journeyview/add").get_data(as_text=True))
    base = {"name": "Welcome series", "active": "y", "trigger_kind": "event",
            "trigger_event": "contact.created", "trigger_segment_change": "entered",
            "cost": "0", "conversion_days": "7", "csrf_token": token}

    broken = client.post("/journeyview/add", data={**base, "steps": '[{"type": "wait",'})
    page = broken.get_data(as_text=True)
    assert "Not valid JSON: Expecting property name enclosed in double quotes (line 1" in page
    assert "[{&#34;type&#34;: &#34;wait&#34;," in page  # the input is kept
    wrong = client.post("/journeyview/add", data={**base, "steps": json.dumps(
        [{"type": "wait", "hours": 1}, {"type": "send_email", "template_id": 999}])})
    assert "1.template_id: Must be the id of an e-mail template." in wrong.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Journey)) == 0

    steps = [{"type": "wait", "hours": 1}, {"type": "send_email", "template_id": tid}]
    added = client.post("/journeyview/add", data={**base, "steps": json.dumps(steps)})
    assert added.status_code == 302, added.get_data(as_text=True)[-2000:]
    with app.app_context():
        journey = db.session.scalar(select(Journey))
        assert (journey.name, journey.trigger_kind, journey.steps) == (
            "Welcome series", "event", steps)
        pk = journey.id
    edit = client.get(f"/journeyview/edit/{pk}").get_data(as_text=True)
    assert "&#34;template_id&#34;: " + str(tid) in edit  # shown as indented JSON
    steps[0]["hours"] = 48
    changed = client.post(f"/journeyview/edit/{pk}", data={
        **base, "csrf_token": csrf_token(edit), "steps": json.dumps(steps)})
    assert changed.status_code == 302
    with app.app_context():
        assert db.session.get(Journey, pk).steps[0] == {"type": "wait", "hours": 48}
