"""Shared set-up of the service plugin's tests: a site with two support teams.

Not a conftest.py: plugin test folders are not packages, and two conftest
modules would clash.  Test modules import the fixture by name."""

from __future__ import annotations

import pytest

from trellis.db import db
from trellis.models import Contact, Team


def setup_site(app, make_user, api_login):
    """Agents ann, bob, cid in team Support (managed by boss); dan in team Billing;
    boss is a Service Manager.  Returns (client, headers by user, ids)."""
    ids = {name: make_user(app, name, ["Service Agent"]) for name in ("ann", "bob", "cid", "dan")}
    ids["boss"] = make_user(app, "boss", ["Service Manager"])
    with app.app_context():
        sm = app.appbuilder.sm
        ids["admin"] = sm.find_user(username="admin").id
        support = Team(name="Support", manager_id=ids["boss"],
                       members=[sm.get_user_by_id(ids[n]) for n in ("ann", "bob", "cid")])
        billing = Team(name="Billing", members=[sm.get_user_by_id(ids["dan"])])
        contact = Contact(first_name="Cora", last_name="Customer", email="cora@example.com")
        db.session.add_all([support, billing, contact])
        db.session.commit()
        ids.update(support=support.id, billing=billing.id, contact=contact.id)
    client = app.test_client()
    headers = {name: api_login(client, name, "pw-123456")
               for name in ("ann", "bob", "cid", "dan", "boss")}
    headers["admin"] = api_login(client)
    return client, headers, ids


@pytest.fixture
def site(trellis_app_factory, make_user, api_login, event_capture):
    app = trellis_app_factory(plugins=["service"], extra_plugins=[("capture", event_capture)])
    client, headers, ids = setup_site(app, make_user, api_login)
    return app, client, headers, ids, event_capture
