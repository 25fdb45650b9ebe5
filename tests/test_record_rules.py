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


def test_a_restricted_user_cannot_leave_a_record_without_owner(site):
    app, client, headers, ids, pks = site
    response = client.put(f"/api/v1/contact/{pks['ann']}", headers=headers["ann"],
                          json={"owner_id": None})
    assert response.status_code == 400
    assert response.get_json()["message"] == {"owner_id": [
        "A record must have an owner; give it to yourself or your team."]}


def test_history_link_only_for_users_who_may_read_the_audit_log(site, web_login):
    app, client, headers, ids, pks = site
    rep = app.test_client()
    web_login(rep, "ann", "pw-123456")
    assert "/auditview/record/" not in rep.get(f"/contactview/show/{pks['ann']}").get_data(
        as_text=True)
    admin = app.test_client()
    web_login(admin)
    assert f'/auditview/record/contact/{pks["ann"]}' in admin.get(
        f"/contactview/show/{pks['ann']}").get_data(as_text=True)


def test_jobs_run_for_a_restricted_user_are_not_restricted(trellis_app_factory, make_user,
                                                           api_login):
    """In-process jobs run inside the request that queued them; they act as the
    system, exactly as they would in an rq worker."""
    from sqlalchemy import func, select

    from trellis.specs import EventHandler, JobSpec

    seen = []

    class Counter:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Counter")

        @hookimpl
        def trellis_roles(self):
            return [RoleSpec("Rep", CRUD, scope="own")]

        @hookimpl
        def trellis_jobs(self):
            def count():
                from trellis import rules
                seen.append(db.session.scalar(rules.restrict(
                    select(func.count()).select_from(Contact), Contact)))
            return [JobSpec("counter.count", count)]

        @hookimpl
        def trellis_event_handlers(self):
            from trellis.jobs import enqueue
            return [EventHandler("contact.created", lambda e: enqueue("counter.count"))]

    app = trellis_app_factory(extra_plugins=[("counter", Counter())])
    make_user(app, "ann", ["Rep"])
    with app.app_context():
        db.session.add(Contact(first_name="Someone", last_name="Else"))
        db.session.commit()
    seen.clear()
    client = app.test_client()
    response = client.post("/api/v1/contact/", headers=api_login(client, "ann", "pw-123456"),
                           json={"first_name": "Ann's", "last_name": "New"})
    assert response.status_code == 201
    assert seen == [2]


def test_bulk_actions_skip_records_the_rule_hides(trellis_app_factory, make_user, web_login):
    from flask_appbuilder import action

    from trellis.datamodel import TrellisSQLAInterface
    from trellis.specs import ViewSpec
    from trellis.testing import csrf_token
    from trellis.views import TrellisModelView

    class Tagger(TrellisModelView):
        datamodel = TrellisSQLAInterface(Contact)
        class_permission_name = "tagger.Tagger"
        list_columns = ["first_name"]

        @action("touch", "Touch", "", "fa-hand")
        def touch(self, items):
            for item in items:
                item.title = "touched"
            db.session.commit()
            return "done"

    class TaggerPlugin:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Tagger")

        @hookimpl
        def trellis_views(self):
            return [ViewSpec(Tagger, "Tagger")]

        @hookimpl
        def trellis_roles(self):
            return [RoleSpec("Rep", CRUD + [(p, "tagger.Tagger") for p in
                                            ("can_read", "can_write")], scope="own")]

    app = trellis_app_factory(extra_plugins=[("tagger", TaggerPlugin())])
    ann = make_user(app, "ann", ["Rep"])
    with app.app_context():
        mine = Contact(first_name="Mine", last_name="X", owner_id=ann)
        other = Contact(first_name="Other", last_name="Y")
        db.session.add_all([mine, other])
        db.session.commit()
        ids = [mine.id, other.id]
    client = app.test_client()
    web_login(client, "ann", "pw-123456")
    token = csrf_token(client.get("/tagger/list/").get_data(as_text=True))
    response = client.post("/tagger/action_post", data={
        "action": "touch", "rowid": [str(i) for i in ids], "csrf_token": token})
    assert response.status_code == 200
    with app.app_context():
        assert [db.session.get(Contact, i).title for i in ids] == ["touched", None]
