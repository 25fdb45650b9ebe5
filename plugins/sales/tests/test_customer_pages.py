"""The lead's Convert page, and the sales panel on contact and account pages
(the core's record panels: record rules apply, a disabled plugin's panel goes)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from trellis import hookimpl
from trellis.db import db
from trellis.models import Account, Contact, Team
from trellis.specs import Manifest, PanelSpec
from trellis.testing import csrf_token


@pytest.fixture
def shop(trellis_app_factory, make_user, api_login):
    app = trellis_app_factory(plugins=["sales"], extra_plugins=[("broken", BrokenPanel())])
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"])}
    with app.app_context():
        acme = Account(name="Acme", domain="acme.example", owner_id=ids["rep"])
        ana = Contact(first_name="Ana", last_name="Lopez", email="ana@acme.example",
                      account=acme, owner_id=ids["rep"])
        db.session.add_all([acme, ana])
        db.session.commit()
        ids["acme"], ids["ana"] = acme.id, ana.id
    client = app.test_client()
    headers = {"admin": api_login(client), "rep": api_login(client, "rep", "pw-123456"),
               "rep2": api_login(client, "rep2", "pw-123456")}
    return app, ids, headers


class BrokenPanel:
    """A plugin whose contact panel raises: the page must still work."""

    @hookimpl
    def trellis_manifest(self):
        return Manifest(label="Broken panel")

    @hookimpl
    def trellis_record_panels(self):
        def boom(record):
            raise RuntimeError("panel bug")
        return [PanelSpec("boom", "Broken", boom, models=("contact",), order=1)]


def new_client(app, web_login, user="admin"):
    client = app.test_client()
    if user == "admin":
        web_login(client)
    else:
        web_login(client, user, "pw-123456")
    return client


def post_convert(client, lead_id, **fields):
    page = client.get(f"/leadconvert/convert/{lead_id}")
    assert page.status_code == 200, page.status_code
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), **fields}
    return client.post(f"/leadconvert/convert/{lead_id}", data=data)


def test_convert_page_matches_the_contact_creates_the_deal_and_lands_on_the_contact(
        shop, web_login):
    from trellis_sales.models import Deal, Lead

    app, ids, headers = shop
    client = app.test_client()
    lead_id = client.post("/api/v1/lead/", headers=headers["rep"], json={
        "first_name": "Ana", "last_name": "Lopez", "email": "ANA@acme.example",
        "company": "Acme"}).get_json()["id"]
    web = new_client(app, web_login, "rep")
    show = web.get(f"/leadview/show/{lead_id}").get_data(as_text=True)
    assert "Convert lead" in show
    bad = post_convert(web, lead_id, create_deal="y", deal_name="Big one", amount="lots")
    assert bad.status_code == 400
    assert "Not a valid number." in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "new"  # nothing converted
    done = post_convert(web, lead_id, create_deal="y", deal_name="Big one", amount="1500")
    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"/contactview/show/{ids['ana']}")
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.status == "converted" and lead.converted_contact_id == ids["ana"]
        deal = db.session.scalar(select(Deal).where(Deal.name == "Big one"))
        assert (deal.contact_id, deal.account_id, str(deal.amount)) == (
            ids["ana"], ids["acme"], "1500.00")
        assert db.session.scalar(select(Contact.id).where(Contact.id != ids["ana"])) is None
    contact_page = web.get(done.headers["Location"]).get_data(as_text=True)
    assert "Lead converted: contact Ana Lopez (existing), account Acme (existing), " \
           "deal Big one." in contact_page
    again = post_convert(web, lead_id, create_deal="y")
    assert again.status_code == 400
    assert "This lead is already converted." in again.get_data(as_text=True)


def test_convert_page_obeys_record_rules_and_needs_write(shop, web_login, make_user):
    app, ids, headers = shop
    client = app.test_client()
    lead_id = client.post("/api/v1/lead/", headers=headers["rep"], json={
        "last_name": "Solo", "company": "Solo Ltd"}).get_json()["id"]
    other = new_client(app, web_login, "rep2")
    assert other.get(f"/leadconvert/convert/{lead_id}").status_code == 404
    make_user(app, "viewer", ["CRM Viewer"])
    viewer = new_client(app, web_login, "viewer")
    assert viewer.get(f"/leadconvert/convert/{lead_id}").status_code == 403


def deal(client, headers, name, account, contact=None, amount=100, owner=None):
    response = client.post("/api/v1/deal/", headers=headers, json={
        "name": name, "account_id": account, "contact_id": contact, "amount": amount,
        **({"owner_id": owner} if owner else {})})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def panel_html(page: str, name: str) -> str:
    match = re.search(rf'id="panel-{name}".*?</div>\s*</div>', page, re.S)
    return match.group(0) if match else ""


def test_contact_and_account_pages_show_the_sales_panel_under_record_rules(shop, web_login):
    from trellis import lifecycle

    app, ids, headers = shop
    client = app.test_client()
    deal(client, headers["rep"], "Rep deal", ids["acme"], ids["ana"], 700)
    deal(client, headers["admin"], "Other rep deal", ids["acme"], owner=ids["rep2"])
    client.post("/api/v1/task/", headers=headers["rep"], json={
        "kind": "call", "subject": "Call Ana", "contact_id": ids["ana"]})

    admin = new_client(app, web_login)
    account_page = admin.get(f"/accountview/show/{ids['acme']}").get_data(as_text=True)
    panel = panel_html(account_page, "sales-customer")
    assert "Rep deal" in panel and "Other rep deal" in panel

    rep = new_client(app, web_login, "rep")
    contact_page = rep.get(f"/contactview/show/{ids['ana']}")
    assert contact_page.status_code == 200  # the broken panel did not break the page
    html = contact_page.get_data(as_text=True)
    assert "This panel could not be shown." in panel_html(html, "broken-boom")
    panel = panel_html(html, "sales-customer")
    assert "Rep deal" in panel and "700.00 EUR" in panel and "Call Ana" in panel
    rep_panel = panel_html(rep.get(f"/accountview/show/{ids['acme']}").get_data(as_text=True),
                           "sales-customer")
    assert "Rep deal" in rep_panel and "Other rep deal" not in rep_panel

    with app.app_context():
        lifecycle.disable(app.extensions["trellis"], "sales")
    gone = admin.get(f"/contactview/show/{ids['ana']}").get_data(as_text=True)
    assert 'id="panel-sales-customer"' not in gone
