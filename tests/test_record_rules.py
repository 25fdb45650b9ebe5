"""Record rules (own / team / all) on every path through the core's base classes."""

from __future__ import annotations

import pytest

from trellis import hookimpl
from trellis.db import db
from trellis.models import Contact, RoleScope, Team
from trellis.specs import Manifest, RoleSpec

CRUD = [(p, "core.Contact") for p in ("can_read", "can_write")] + [
    ("can_read", "core.Account")]


class Roles:
    @hookimpl
    def trellis_manifest(self):
        return Manifest("Test roles")

    @hookimpl
    def trellis_roles(self):
        return [RoleSpec("Rep", CRUD, scope="own"), RoleSpec("Manager", CRUD, scope="team"),
                RoleSpec("Auditor", [("can_read", "core.Contact")])]


@pytest.fixture
def site(trellis_app_factory, make_user, api_login):
    app = trellis_app_factory(extra_plugins=[("roles", Roles())])
    ids = {name: make_user(app, name, [role]) for name, role in [
        ("ann", "Rep"), ("bob", "Rep"), ("cid", "Rep"), ("meg", "Manager"),
        ("aud", "Auditor")]}
    with app.app_context():
        team = Team(name="North", manager_id=ids["meg"])
        team.members = [app.appbuilder.sm.get_user_by_id(ids[n]) for n in ("ann", "bob")]
        db.session.add(team)
        for name in ("ann", "bob", "cid"):
            db.session.add(Contact(first_name=f"{name}'s", last_name="Customer",
                                   owner_id=ids[name]))
        db.session.add(Contact(first_name="Nobody's", last_name="Customer"))
        db.session.commit()
        pks = {c.first_name.split("'")[0]: c.id for c in db.session.query(Contact)}
    client = app.test_client()
    headers = {name: api_login(client, name, "pw-123456") for name in ids}
    headers["admin"] = api_login(client)
    return app, client, headers, ids, pks


def names(client, headers):
    body = client.get("/api/v1/contact/?q=(order_column:id,order_direction:asc)",
                      headers=headers).get_json()
    return [r["first_name"] for r in body["result"]], body["count"]


def test_each_scope_sees_exactly_its_records(site):
    app, client, headers, ids, pks = site
    assert names(client, headers["ann"]) == (["ann's"], 1)
    assert names(client, headers["cid"]) == (["cid's"], 1)
    assert names(client, headers["meg"]) == (["ann's", "bob's"], 2)
    assert names(client, headers["admin"]) == (
        ["ann's", "bob's", "cid's", "Nobody's"], 4)
    assert names(client, headers["aud"])[1] == 4  # a role without a rule sees all


def test_records_outside_the_rule_cannot_be_read_changed_or_deleted(site):
    app, client, headers, ids, pks = site
    ann = headers["ann"]
    assert client.get(f"/api/v1/contact/{pks['bob']}", headers=ann).status_code == 404
    assert client.put(f"/api/v1/contact/{pks['bob']}", headers=ann,
                      json={"last_name": "Stolen"}).status_code == 404
    assert client.delete(f"/api/v1/contact/{pks['bob']}", headers=ann).status_code == 404
    assert client.get(f"/api/v1/contact/{pks['ann']}", headers=ann).status_code == 200
    meg = headers["meg"]
    assert client.put(f"/api/v1/contact/{pks['bob']}", headers=meg,
                      json={"title": "Buyer"}).status_code == 200
    assert client.get(f"/api/v1/contact/{pks['cid']}", headers=meg).status_code == 404
    with app.app_context():
        assert db.session.get(Contact, pks["bob"]).last_name == "Customer"


def test_new_records_belong_to_their_creator_and_cannot_be_given_away(site):
    app, client, headers, ids, pks = site
    created = client.post("/api/v1/contact/", headers=headers["ann"],
                          json={"first_name": "Fresh", "last_name": "Lead"})
    assert created.status_code == 201
    assert created.get_json()["result"]["owner_id"] == ids["ann"]
    refused = client.post("/api/v1/contact/", headers=headers["ann"], json={
        "first_name": "Gift", "last_name": "Lead", "owner_id": ids["bob"]})
    assert refused.status_code == 400
    assert refused.get_json()["message"] == {
        "owner_id": ["You can only assign records to yourself."]}
    moved = client.put(f"/api/v1/contact/{pks['ann']}", headers=headers["meg"],
                       json={"owner_id": ids["bob"]})
    assert moved.status_code == 200
    refused = client.put(f"/api/v1/contact/{pks['bob']}", headers=headers["meg"],
                         json={"owner_id": ids["cid"]})
    assert refused.get_json()["message"] == {
        "owner_id": ["You can only assign records to members of your teams."]}


def test_the_web_list_and_the_owner_picker_follow_the_rule(site, web_login):
    app, client, headers, ids, pks = site
    browser = app.test_client()
    web_login(browser, "ann", "pw-123456")
    page = browser.get("/contactview/list/").get_data(as_text=True)
    assert "ann&#39;s" in page and "bob&#39;s" not in page and "cid&#39;s" not in page
    assert browser.get(f"/contactview/show/{pks['bob']}").status_code == 404
    form = browser.get("/contactview/add").get_data(as_text=True)
    owner_picker = form[form.index('id="owner"'):form.index("</select>", form.index('id="owner"'))]
    assert "Ann Tester" in owner_picker and "Bob Tester" not in owner_picker


def test_an_admin_changes_a_roles_scope_and_it_applies_at_once(site):
    app, client, headers, ids, pks = site
    with app.app_context():
        rep = app.appbuilder.sm.find_role("Rep")
        db.session.get(RoleScope, rep.id).scope = "team"
        db.session.commit()
    assert names(client, headers["ann"]) == (["ann's", "bob's"], 2)


def test_a_role_scope_must_be_valid(trellis_app_factory):
    class Bad:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Bad")

        @hookimpl
        def trellis_roles(self):
            return [RoleSpec("Odd", [], scope="everyone")]

    app = trellis_app_factory(extra_plugins=[("crm_bad", Bad())])
    assert app.extensions["trellis"].plugins.by_name["crm_bad"].error == (
        "failed to register: role 'Odd': scope must be own, team or all")
