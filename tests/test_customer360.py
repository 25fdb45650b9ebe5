"""Customer 360: the contact's and account's pages with the plugins' panels and
one merged Activity timeline (filters, pages by key, record rules)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from trellis import hookimpl
from trellis.db import db
from trellis.models import Account, Activity, Contact
from trellis.specs import Manifest, PanelSpec

PW = "pw-123456"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


class Notes:
    """A throwaway plugin with a contact panel and its own timeline entries."""

    @hookimpl
    def trellis_manifest(self):
        return Manifest(label="Call notes (tests)")

    @hookimpl
    def trellis_record_panels(self):
        return [PanelSpec("calls", "Calls", lambda record: f"<p>{record.id} calls</p>",
                          models=("contact",), wide=True)]


@pytest.fixture
def site(trellis_app_factory, make_user, api_login):
    app = trellis_app_factory(plugins=["sales"], extra_plugins=[("calls", Notes())])
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"])}
    with app.app_context():
        acme = Account(name="Acme", owner_id=ids["rep"])
        ana = Contact(first_name="Ana", last_name="Lopez", account=acme, owner_id=ids["rep"])
        bob = Contact(first_name="Bob", last_name="Hidden", account=acme, owner_id=ids["rep2"])
        db.session.add_all([acme, ana, bob])
        db.session.flush()
        rows = []
        # 30 entries on Ana, one every hour back from T0, from three plugins
        for i in range(30):
            plugin = ("core", "sales", "calls")[i % 3]
            rows.append(Activity(type=("email", "deal.won", "call")[i % 3], subject=f"ana {i}",
                                 plugin=plugin, contact_id=ana.id, account_id=acme.id,
                                 occurred_at=T0 - timedelta(hours=i)))
        rows += [Activity(type="call", subject="bob secret", plugin="calls",
                          contact_id=bob.id, account_id=acme.id, occurred_at=T0),
                 Activity(type="meeting", subject="account kickoff", plugin="core",
                          account_id=acme.id, occurred_at=T0 + timedelta(days=1)),
                 # the same moment as "ana 0": the key (occurred_at, id) still orders it
                 Activity(type="email", subject="ana tie", plugin="core", contact_id=ana.id,
                          occurred_at=T0)]
        db.session.add_all(rows)
        db.session.commit()
        ids.update(acme=acme.id, ana=ana.id, bob=bob.id)
    client = app.test_client()
    headers = {"admin": api_login(client), "rep": api_login(client, "rep", PW),
               "rep2": api_login(client, "rep2", PW)}
    return app, client, headers, ids


def timeline(client, headers, model, pk, **args):
    response = client.get(f"/api/v1/customer/{model}/{pk}/timeline", headers=headers,
                          query_string=args)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def subjects(page):
    return [e["subject"] for e in page["result"]]


def test_the_timeline_merges_plugins_and_pages_by_key(site):
    app, client, headers, ids = site
    first = timeline(client, headers["rep"], "contact", ids["ana"], limit=10)
    assert subjects(first) == ["ana tie", "ana 0", *(f"ana {i}" for i in range(1, 9))]
    assert {e["plugin"] for e in first["result"]} == {"core", "sales", "calls"}
    assert first["result"][2]["plugin_label"] == "Sales"
    seen = subjects(first)
    page = first
    while page["next"]:
        page = timeline(client, headers["rep"], "contact", ids["ana"], limit=10,
                        before=page["next"])
        seen += subjects(page)
    assert seen == ["ana tie", *(f"ana {i}" for i in range(30))]  # each once, in order

    sales = timeline(client, headers["rep"], "contact", ids["ana"], plugin="sales", limit=100)
    assert subjects(sales) == [f"ana {i}" for i in range(1, 30, 3)]
    calls = timeline(client, headers["rep"], "contact", ids["ana"], type="call", limit=100)
    assert {e["plugin"] for e in calls["result"]} == {"calls"}
    # the day before T0 (UTC): ana 13 (23:00) ... ana 29 (07:00)
    day = timeline(client, headers["rep"], "contact", ids["ana"], since="2025-02-28",
                   until="2025-02-28", limit=100)
    assert subjects(day) == [f"ana {i}" for i in range(13, 30)]

    for args, field in (({"before": "yesterday"}, "before"), ({"since": "soon"}, "since"),
                        ({"limit": 1000}, "limit"),
                        ({"since": "2025-03-02", "until": "2025-03-01"}, "until")):
        response = client.get(f"/api/v1/customer/contact/{ids['ana']}/timeline",
                              headers=headers["rep"], query_string=args)
        assert response.status_code == 400 and list(response.get_json()["message"]) == [field]


def test_an_accounts_timeline_holds_its_contacts_but_never_hidden_ones(site):
    app, client, headers, ids = site
    admin = timeline(client, headers["admin"], "account", ids["acme"], limit=100)
    assert subjects(admin)[:4] == ["account kickoff", "ana tie", "bob secret", "ana 0"]
    assert len(admin["result"]) == 33
    rep = timeline(client, headers["rep"], "account", ids["acme"], limit=100)
    assert "bob secret" not in subjects(rep) and len(rep["result"]) == 32
    # the hidden contact and an account the user may not see: 404
    for model, pk in (("contact", ids["bob"]), ("account", ids["acme"])):
        assert client.get(f"/api/v1/customer/{model}/{pk}/timeline",
                          headers=headers["rep2"] if model == "account" else headers["rep"]
                          ).status_code == 404
    assert client.get("/api/v1/customer/deal/1/timeline",
                      headers=headers["admin"]).status_code == 404


def panel_ids(html):
    """Panels of plugins (the core's own, consent and personal data, left aside)."""
    return [p for p in re.findall(r'id="panel-([\w-]+)"', html) if not p.startswith("core-")]


def test_the_customer_page_shows_panels_and_the_timeline(site, web_login):
    from trellis import lifecycle

    app, client, headers, ids = site
    client.post("/api/v1/deal/", headers=headers["rep"],
                json={"name": "Big one", "contact_id": ids["ana"], "amount": 500})
    web = app.test_client()
    web_login(web, "rep", PW)
    html = web.get(f"/contactview/show/{ids['ana']}").get_data(as_text=True)
    assert 'id="customer-360"' in html and "Ana Lopez" in html
    assert 'id="customer-owner">Owner: rep<' in html
    assert panel_ids(html) == ["sales-customer", "calls-calls"]  # by order, then name
    assert 'class="panel panel-default trellis-panel tr-wide" id="panel-calls-calls"' in html
    assert "Big one" in html
    entries = re.findall(r'<li data-plugin="(\w+)" data-type="[\w.]+" data-id="\d+">', html)
    assert len(entries) == 25 and set(entries) == {"core", "sales", "calls"}
    assert 'id="timeline-older"' in html
    older = re.search(r'id="timeline-older" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    page2 = web.get(f"/contactview/show/{ids['ana']}{older.split('#')[0]}").get_data(as_text=True)
    assert "ana 23" in page2 and "ana 22</" not in page2 and 'id="timeline-reset"' in page2
    filtered = web.get(f"/contactview/show/{ids['ana']}?tl_plugin=calls").get_data(as_text=True)
    assert set(re.findall(r'<li data-plugin="(\w+)"', filtered)) == {"calls"}
    bad = web.get(f"/contactview/show/{ids['ana']}?tl_since=nope").get_data(as_text=True)
    assert "since: Not a valid date." in bad
    # the account page: its contacts' activities, not the hidden contact's
    account = web.get(f"/accountview/show/{ids['acme']}").get_data(as_text=True)
    assert "account kickoff" in account and "bob secret" not in account
    assert "(the account and its contacts)" in account
    # a contact the rep may not see: no page at all
    assert web.get(f"/contactview/show/{ids['bob']}").status_code == 404

    # a disabled plugin's panel and its timeline entries' label go; the page stays
    with app.app_context():
        lifecycle.disable(app.extensions["trellis"], "calls")
    html = web.get(f"/contactview/show/{ids['ana']}").get_data(as_text=True)
    assert panel_ids(html) == ["sales-customer"]
    with app.app_context():
        lifecycle.disable(app.extensions["trellis"], "sales")
    html = web.get(f"/contactview/show/{ids['ana']}").get_data(as_text=True)
    assert panel_ids(html) == [] and 'id="customer-360"' in html
