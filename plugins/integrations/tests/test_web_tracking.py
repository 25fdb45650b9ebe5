"""Behaviour events: the ingestion API (API key, per-event errors, activities,
core events), the first-party snippet and its public collect endpoint (origins,
size, stitching anonymous visits on a form submit), analytics, inbound webhooks."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from trellis.db import db, utcnow
from trellis.models import Activity, Contact

from trellis_integrations import webhooks
from trellis_integrations.models import InboundSource, TrackingSite, WebEvent

SHOP = "https://shop.example.com"


@pytest.fixture
def tracked(trellis_app_factory, api_login, event_capture):
    app = trellis_app_factory(plugins=["integrations"],
                              extra_plugins=[("capture", event_capture)])
    with app.app_context():
        site = TrackingSite(name="Shop", allowed_origins=f"{SHOP}\nhttps://www.example.com")
        db.session.add(site)
        db.session.commit()
        key = site.site_key
    client = app.test_client()
    return app, client, api_login(client), key, event_capture


def collect(client, key, *events, origin=SHOP):
    # what navigator.sendBeacon sends: a text/plain JSON body with the page's Origin
    return client.post("/integrations/t/collect", data=json.dumps({"site": key,
                                                                   "events": list(events)}),
                       content_type="text/plain;charset=UTF-8", headers={"Origin": origin})


def timeline(app, contact_id):
    with app.app_context():
        return [(a.type, a.subject, a.plugin) for a in db.session.scalars(
            select(Activity).where(Activity.contact_id == contact_id).order_by(Activity.id))]


def test_anonymous_page_views_join_the_new_contacts_timeline(tracked):
    """Acceptance: anonymous page views followed by a form submit appear in the new
    contact's timeline."""
    app, client, _, key, capture = tracked
    visitor = {"visitor_id": "v-123", "session_id": "s-1"}
    for path, title in (("/", "Home"), ("/pricing", "Pricing")):
        answer = collect(client, key, {"type": "page_view", "url": SHOP + path,
                                       "title": title, **visitor})
        assert answer.status_code == 200 and answer.get_json()["accepted"] == 1
        assert answer.headers["Access-Control-Allow-Origin"] == SHOP
    collect(client, key, {"type": "product_view", "product": "Team plan", **visitor})
    with app.app_context():
        assert db.session.scalar(select(Contact.id)) is None  # nobody known yet
    capture.events.clear()
    answer = collect(client, key, {"type": "form_submit", "url": SHOP + "/demo",
                                   "email": "Nina.North@Example.com",
                                   "properties": {"form": "Book a demo"}, **visitor})
    assert answer.get_json() == {"accepted": 1, "errors": {}}
    with app.app_context():
        contact = db.session.scalar(select(Contact))
        assert (contact.first_name, contact.last_name, contact.email) == (
            "Nina", "North", "nina.north@example.com")
        assert contact.owner_id is None
        events = db.session.scalars(select(WebEvent).order_by(WebEvent.id)).all()
        assert {e.contact_id for e in events} == {contact.id}
        assert all(e.activity_id for e in events)
    assert timeline(app, contact.id) == [
        ("web.form_submit", "Submitted Book a demo", "integrations"),
        ("web.page_view", "Home", "integrations"),
        ("web.page_view", "Pricing", "integrations"),
        ("web.product_view", "Viewed Team plan", "integrations"),
    ]
    names = capture.names()
    assert "contact.created" in names and "web.form_submit" in names
    identified = [e for e in capture.events if e.name == "web.identified"]
    assert [(e.data["contact_id"], e.data["stitched_events"]) for e in identified] == [
        (contact.id, 3)]
    # later visits of the same browser go straight to the contact
    collect(client, key, {"type": "add_to_cart", "product": "Team plan", **visitor})
    assert timeline(app, contact.id)[-1] == ("web.add_to_cart", "Added to cart: Team plan",
                                             "integrations")
    # ... and count in the contact's features (lead scoring, segments)
    with app.app_context():
        from trellis import features

        def value(name):
            return dict(db.session.execute(features.query(name)).all()).get(contact.id)

        assert (value("web_page_views_30d"), value("web_visits_30d"),
                value("web_cart_adds_30d")) == (2, 1, 1)


def test_the_public_endpoint_checks_origin_size_and_site(tracked):
    app, client, _, key, _ = tracked
    event = {"type": "page_view", "visitor_id": "v-1", "url": SHOP + "/"}
    assert collect(client, key, event, origin="https://evil.example").status_code == 403
    assert client.post("/integrations/t/collect", json={"site": key, "events": [event]}
                       ).status_code == 403  # no Origin: not from a browser page
    assert collect(client, "ts_nope", event).status_code == 404
    big = collect(client, key, {**event, "title": "x" * 20000})
    assert big.status_code == 413
    preflight = client.options("/integrations/t/collect", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    # a browser cannot name a contact by id (only the API key can)
    answer = collect(client, key, {**event, "contact_id": 1})
    assert answer.get_json()["accepted"] == 1
    with app.app_context():
        assert db.session.scalar(select(WebEvent.contact_id)) is None
    bad = collect(client, key, {"type": "teleport", "visitor_id": "v-1"},
                  {"type": "add_to_cart", "visitor_id": "v-1"}, event)
    assert bad.get_json() == {"accepted": 1, "errors": {
        "0": {"type": ["Must be one of: page_view, product_view, add_to_cart, form_submit, "
                       "purchase, identify."]},
        "1": {"product": ["Required for this event type."]}}}


def test_the_snippet_is_served_first_party(tracked):
    app, client, _, key, _ = tracked
    script = client.get(f"/integrations/t/{key}.js")
    assert script.status_code == 200
    assert script.mimetype == "application/javascript"
    text = script.get_data(as_text=True)
    assert f'var SITE = "{key}";' in text and "/integrations/t/collect" in text
    assert "http" not in text.split("ENDPOINT")[0].replace("https:", "").split("*/")[-1]
    assert client.get("/integrations/t/ts_unknown.js").status_code == 404


def test_ingestion_api_with_an_api_key(tracked, make_user, api_login):
    app, client, headers, key, capture = tracked
    with app.app_context():
        known = Contact(first_name="Omar", last_name="Okafor", email="omar@example.com")
        db.session.add(known)
        db.session.commit()
        known_id = known.id
    api_key = client.post("/api/v1/security/api_keys/", headers=headers,
                          json={"name": "shop backend"}).get_json()["result"]["key"]
    bearer = {"Authorization": f"Bearer {api_key}"}
    capture.events.clear()
    answer = client.post("/api/v1/ingest/events", headers=bearer, json={"site": key, "events": [
        {"type": "purchase", "email": "OMAR@example.com", "product": "Team plan",
         "value": "99.00", "currency": "EUR", "occurred_at": "2026-11-20T10:00:00+00:00"},
        {"type": "page_view", "contact_id": known_id, "url": SHOP + "/account"},
        {"type": "page_view"},
        {"type": "purchase", "contact_id": 999999, "value": "1"},
        {"type": "purchase", "email": "nobody@example.com", "value": "12.5", "currency": "eur"},
    ]})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["accepted"] == 2
    assert body["errors"] == {
        "2": {"visitor_id": ["Give visitor_id, contact_id or email."]},
        "3": {"contact_id": ["No contact with id 999999."]},
        "4": {"currency": ["Use an ISO 4217 code, e.g. EUR."]}}
    assert timeline(app, known_id) == [
        ("web.purchase", "Purchase 99.00 EUR", "integrations"),
        ("web.page_view", "/account", "integrations")]
    purchase = next(e for e in capture.events if e.name == "web.purchase")
    assert (purchase.data["contact_id"], purchase.data["value"]) == (known_id, "99.00")
    # without the permission: a plain CRM user's key may not ingest
    make_user(app, "clerk", ["CRM User"])
    clerk = api_login(client, "clerk", "pw-123456")
    assert client.post("/api/v1/ingest/events", headers=clerk,
                       json={"events": []}).status_code == 403
    assert client.post("/api/v1/ingest/events", json={"events": []}).status_code == 401
    too_many = client.post("/api/v1/ingest/events", headers=bearer,
                           json={"events": [{"type": "page_view"}] * 501})
    assert too_many.status_code == 400


def test_analytics_figures(tracked):
    """Hand-computed: 3 visitors, 4 sessions; sessions s1 (2 page views), s2 (1 page
    view: bounced), s3 (page view + product view + purchase), s4 (1 page view:
    bounced).  Bounce 2/4 = 50 %; conversion: 1 buyer of 3 visitors = 33.3 %."""
    app, client, headers, key, _ = tracked
    with app.app_context():
        site_id = db.session.scalar(select(TrackingSite.id))
        now = utcnow()
        rows = [("a", "s1", "page_view", "/", None, None), ("a", "s1", "page_view", "/pricing",
                                                             None, None),
                ("a", "s2", "page_view", "/", None, None),
                ("b", "s3", "page_view", "/shop", None, None),
                ("b", "s3", "product_view", None, "Team plan", None),
                ("b", "s3", "purchase", None, "Team plan", "99.00"),
                ("c", "s4", "page_view", "/", None, None)]
        for visitor, session, kind, path, product, value in rows:
            db.session.add(WebEvent(site_id=site_id, visitor_id=visitor, session_id=session,
                                    type=kind, path=path, product=product, value=value,
                                    occurred_at=now - timedelta(days=1)))
        db.session.add(WebEvent(site_id=site_id, visitor_id="old", session_id="s0",
                                type="page_view", path="/", occurred_at=now - timedelta(days=40)))
        db.session.commit()
    data = client.get("/api/v1/web_analytics/?days=30", headers=headers).get_json()
    assert data["summary"] == {"days": 30, "site_id": None, "visitors": 3, "page_views": 5,
                               "sessions": 4, "bounced_sessions": 2, "bounce_rate": 50.0,
                               "converted_visitors": 1, "conversion_rate": 33.3}
    assert data["top_pages"] == [{"path": "/", "views": 3, "visitors": 2},  # a twice, c
                                 {"path": "/pricing", "views": 1, "visitors": 1},
                                 {"path": "/shop", "views": 1, "visitors": 1}]
    assert data["top_products"] == [{"product": "Team plan", "views": 1, "add_to_cart": 0,
                                     "purchases": 1, "revenue": "99.00"}]
    assert client.get("/api/v1/web_analytics/?days=0", headers=headers).status_code == 400
    widgets = {w["name"]: w for w in client.get("/api/v1/dashboard/",
                                                headers=headers).get_json()["result"]}
    assert widgets["integrations.web_visitors"]["data"]["value"] == "3"
    assert widgets["integrations.web_conversion"]["data"]["value"] == "33.3"
    assert widgets["integrations.web_top_pages"]["data"]["bars"][0] == {
        "label": "/", "value": 3, "display": "3"}


def _signed(secret, body):
    stamp = int(time.time())
    return {"X-Trellis-Timestamp": str(stamp),
            "X-Trellis-Signature": f"v1={webhooks.sign(secret, stamp, body)}",
            "Content-Type": "application/json"}


def test_inbound_webhooks_are_signed_and_mapped(tracked):
    app, client, headers, _, _ = tracked
    made = client.post("/api/v1/inbound_source/", headers=headers, json={
        "name": "Typeform", "slug": "typeform", "target": "contact",
        "mapping": {"email": "answers.email", "first_name": "answers.name.first",
                    "last_name": "answers.name.last"}})
    assert made.status_code == 201, made.get_json()
    with app.app_context():
        secret = db.session.scalar(select(InboundSource.secret))
    body = json.dumps({"answers": {"email": "Lin@Example.com",
                                   "name": {"first": "Lin", "last": "Lee"}}}).encode()
    assert client.post("/integrations/hooks/typeform", data=body,
                       headers={"Content-Type": "application/json"}).status_code == 401
    stale = _signed(secret, body)
    stale["X-Trellis-Timestamp"] = str(int(time.time()) - 3600)
    assert client.post("/integrations/hooks/typeform", data=body,
                       headers=stale).status_code == 401
    answer = client.post("/integrations/hooks/typeform", data=body,
                         headers=_signed(secret, body))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["action"] == "created"
    again = client.post("/integrations/hooks/typeform", data=body,
                        headers=_signed(secret, body))
    assert again.get_json() == {"id": answer.get_json()["id"], "action": "updated",
                                "target": "contact"}
    bad = json.dumps({"answers": {"email": "not-an-email"}}).encode()
    refused = client.post("/integrations/hooks/typeform", data=bad,
                          headers=_signed(secret, bad))
    assert refused.status_code == 400
    assert set(refused.get_json()["message"]) == {"email", "first_name", "last_name"}
    with app.app_context():
        assert [(c.first_name, c.email) for c in db.session.scalars(select(Contact))] == [
            ("Lin", "lin@example.com")]
    assert client.post("/integrations/hooks/nope", data=body,
                       headers=_signed(secret, body)).status_code == 404
