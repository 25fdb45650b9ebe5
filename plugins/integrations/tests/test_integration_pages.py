"""Every page of the plugin renders with the demo data, for an admin; a CRM user
sees the analytics but not the admin pages."""

from __future__ import annotations

import random

from sqlalchemy import select

from trellis.db import db
from trellis.models import Contact
from trellis.testing import csrf_token

from trellis_integrations import demo
from trellis_integrations.models import DuplicateCandidate, TrackingSite, WebhookEndpoint

PAGES = ["/integrations/imports/", "/integrations/duplicates/",
         "/integrations/duplicates/?model=account", "/integrations/analytics/",
         "/integrations/analytics/?days=7", "/integrations/connectors/",
         "/webhookendpointview/list/", "/webhookdeliveryview/list/",
         "/trackingsiteview/list/", "/inboundsourceview/list/", "/inboundsourceview/add",
         "/webhookendpointview/add", "/dashboard/", "/integrations/"]


def test_pages_render_with_demo_data(trellis_app_factory, web_login, make_user):
    app = trellis_app_factory(plugins=["integrations"])
    with app.app_context():
        for n in range(20):
            db.session.add(Contact(first_name=f"P{n}", last_name="Demo",
                                   email=f"p{n}@example.com"))
        db.session.flush()
        ids = list(db.session.scalars(select(Contact.id)))
        counts = demo.load(db.session, random.Random(7), ids)
        db.session.commit()
        assert counts["webhooks"] == 1 and counts["duplicate pairs"] == 2
        endpoint = db.session.scalar(select(WebhookEndpoint.id))
        site = db.session.scalar(select(TrackingSite.id))
        pair = db.session.scalar(select(DuplicateCandidate.id))
    client = app.test_client()
    web_login(client)
    for path in PAGES + [f"/webhookendpointview/show/{endpoint}",
                         f"/trackingsiteview/show/{site}", f"/integrations/duplicates/{pair}"]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:500])
    site_page = client.get(f"/trackingsiteview/show/{site}").get_data(as_text=True)
    assert "/integrations/t/ts_demo_website.js" in site_page
    analytics = client.get("/integrations/analytics/").get_data(as_text=True)
    assert "Bounce rate" in analytics and "/pricing" in analytics
    # "test connection" without an SMTP server says so instead of failing
    page = client.get("/integrations/connectors/").get_data(as_text=True)
    tested = client.post("/integrations/connectors/test/smtp",
                         data={"csrf_token": csrf_token(page)}).get_data(as_text=True)
    assert "No SMTP server is configured" in tested

    # every API's documentation parses (FAB turns each docstring into OpenAPI)
    from trellis.testing import ADMIN

    token = client.post("/api/v1/security/login", json={
        "username": ADMIN[0], "password": ADMIN[1], "provider": "db"}).get_json()
    spec = client.get("/api/v1/_openapi", headers={
        "Authorization": f"Bearer {token['access_token']}"})
    assert spec.status_code == 200
    assert {"/api/v1/import/", "/api/v1/merge/", "/api/v1/ingest/events",
            "/api/v1/webhook_delivery/{pk}/redeliver",
            "/api/v1/web_analytics/"} <= set(spec.get_json()["paths"])

    make_user(app, "clerk", ["CRM User"])
    clerk = app.test_client()
    web_login(clerk, "clerk", "pw-123456")
    assert clerk.get("/integrations/analytics/").status_code == 200
    for path in ("/integrations/imports/", "/webhookendpointview/list/",
                 "/integrations/duplicates/"):
        assert clerk.get(path).status_code in (302, 403), path


def test_smtp_connection_test_against_a_real_server(trellis_app_factory, web_login,
                                                     smtp_server):
    """The connectors page tests the configured SMTP server (aiosmtpd here)."""
    controller, _ = smtp_server
    port = controller.port
    app = trellis_app_factory(plugins=["integrations"], config={
        "TRELLIS_SMTP_HOST": "127.0.0.1", "TRELLIS_SMTP_PORT": port})
    client = app.test_client()
    web_login(client)
    page = client.get("/integrations/connectors/").get_data(as_text=True)
    tested = client.post("/integrations/connectors/test/smtp",
                         data={"csrf_token": csrf_token(page)}).get_data(as_text=True)
    assert f"SMTP 127.0.0.1:{port} answered 250" in tested
