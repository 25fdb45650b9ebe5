"""Campaign and journey metrics against hand-computed figures; the API, and the
dashboard widgets of a Marketer."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

from trellis.db import db, utcnow
from trellis.models import Contact
from trellis_marketing import campaigns
from trellis_marketing.models import Message


def test_campaign_metrics_match_hand_computed_figures(trellis_app_factory, smtp_sink,
                                                      api_login, make_user, web_login):
    from trellis_sales.models import Order

    app = trellis_app_factory(plugins=["sales", "marketing"], config={
        "TRELLIS_SMTP_HOST": "127.0.0.1", "TRELLIS_SMTP_PORT": smtp_sink.port})
    make_user(app, "mk", ["Marketer"])
    make_user(app, "rep", ["CRM User"])
    with app.app_context():
        people = [Contact(first_name=f"P{i}", last_name="X", email=f"p{i}@example.com")
                  for i in range(5)]
        db.session.add_all(people)
        db.session.commit()
        ids = [p.id for p in people]

    async def refuse(server, session, envelope, address, rcpt_options):
        if address.startswith("p4@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp_sink.handle_RCPT = refuse
    client = app.test_client()
    headers = api_login(client, "mk", "pw-123456")
    tid = client.post("/api/v1/email_template/", headers=headers, json={
        "name": "T", "subject": "S", "text_body": "B"}).get_json()["id"]
    sid = client.post("/api/v1/segment/", headers=headers, json={
        "name": "All", "rules": {"type": "field", "field": "email", "op": "ends_with",
                                 "value": "@example.com"}}).get_json()["id"]
    cid = client.post("/api/v1/campaign/", headers=headers, json={
        "name": "C", "segment_id": sid, "template_id": tid, "cost": "100.00",
        "conversion_days": 7}).get_json()["id"]
    client.post(f"/api/v1/campaign/{cid}/send", headers=headers)

    sent_at = utcnow() - timedelta(days=10)
    with app.app_context():
        db.session.execute(update(Message).where(Message.sent_at.is_not(None))
                           .values(sent_at=sent_at))
        msg = dict(db.session.execute(select(Message.contact_id, Message.id)).all())
        campaigns.record_open(db.session, msg[ids[0]])
        campaigns.record_open(db.session, msg[ids[1]])
        campaigns.record_click(db.session, msg[ids[1]], "https://a.example")
        campaigns.record_click(db.session, msg[ids[2]], "https://a.example")  # no open seen
        campaigns.record_unsubscribe(db.session, msg[ids[3]], ids[3], {})
        db.session.add_all([
            # p0 buys twice within 7 days: one conversion, revenue 120 + 30
            Order(contact_id=ids[0], total=Decimal("120"), ordered_at=sent_at + timedelta(days=1)),
            Order(contact_id=ids[0], total=Decimal("30"), ordered_at=sent_at + timedelta(days=6)),
            # p1 bought before the e-mail and 8 days after: not attributed
            Order(contact_id=ids[1], total=Decimal("500"), ordered_at=sent_at - timedelta(days=1)),
            Order(contact_id=ids[1], total=Decimal("70"), ordered_at=sent_at + timedelta(days=8)),
            # p2 buys within the window
            Order(contact_id=ids[2], total=Decimal("50"), ordered_at=sent_at + timedelta(hours=5)),
            # p4 bounced: not a conversion even though they bought
            Order(contact_id=ids[4], total=Decimal("999"), ordered_at=sent_at + timedelta(days=2)),
        ])
        db.session.commit()

    response = client.get(f"/api/v1/campaign/{cid}/metrics", headers=headers)
    assert response.status_code == 200, response.get_json()
    # p4 refused at RCPT: sent 5, bounced 1, delivered 4; opens p0, p1, p2 (a click
    # implies the open); clicks p1, p2; conversions p0 (120 + 30) and p2 (50) within 7 days
    assert response.get_json() == {
        "sent": 5, "delivered": 4, "bounced": 1, "opened": 3, "clicked": 2,
        "unsubscribed": 1, "ctr": 0.5, "open_rate": 0.75, "conversions": 2,
        "conversion_rate": 0.5, "revenue": "200.00", "cost": "100.00", "roi": 1.0}
    assert client.get("/api/v1/campaign/999/metrics", headers=headers).status_code == 404
    listing = client.get("/api/v1/campaign/_metrics", headers=headers).get_json()["result"]
    assert [(r["name"], r["revenue"]) for r in listing] == [("C", "200.00")]
    other = api_login(client, "rep", "pw-123456")
    assert client.get(f"/api/v1/campaign/{cid}/metrics", headers=other).status_code == 403

    board = client.get("/api/v1/dashboard/", headers=headers)
    assert board.status_code == 200, board.get_json()
    widgets = {w["name"]: w for w in board.get_json()["result"]}
    assert widgets["marketing.campaign_performance"]["data"]["rows"] == [
        ["C", 5, 3, "50.0%", "50.0%", "200.00", "100.0%"]]
    assert [s["value"] for s in widgets["marketing.campaign_funnel"]["data"]["steps"]] == [
        4, 3, 2, 2]
    assert widgets["marketing.campaign_revenue"]["data"]["value"] == "200.00"

    web = app.test_client()
    web_login(web, "mk", "pw-123456")
    page = web.get(f"/campaignview/show/{cid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-metric="CTR">50.0%' in html and 'data-metric="Revenue">200.00' in html
    contact_page = web.get(f"/contactview/show/{ids[0]}").get_data(as_text=True)
    compact = re.sub(r">\s+<", "><", contact_page)
    panel = compact[compact.index('panel-title">Marketing'):][:1500]
    assert "<td>C</td><td>opened</td>" in panel  # p0 opened campaign C


def test_demo_data_and_its_coupon_journey(trellis_app_factory, api_login):
    from trellis.demo import load_demo
    from trellis.jobs import execute
    from trellis_marketing.models import JourneyEnrolment, Segment

    app = trellis_app_factory(plugins=["sales", "marketing"])
    with app.app_context():
        counts = load_demo(contacts=40, users_password="demo-password-1")
        db.session.commit()
        assert counts.get("segments") == 3 and counts.get("journeys") == 1
        viewers = counts["product_views"]
        execute("marketing.journeys", {})
        assert db.session.scalar(select(func.count()).select_from(JourneyEnrolment)) == viewers
        big = db.session.scalar(select(Segment).where(Segment.kind == "static"))
        assert big.evaluated_at is not None
    client = app.test_client()
    headers = api_login(client, "mara.marketer", "demo-password-1")
    sid = client.get("/api/v1/segment/", headers=headers).get_json()["ids"][0]
    assert client.get(f"/api/v1/segment/{sid}/preview", headers=headers).get_json()["count"] > 0
