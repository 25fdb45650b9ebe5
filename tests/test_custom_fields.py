"""Custom fields (issue 8): an admin adds fields to a core model (Contact) and to a
plugin model (the sales plugin's Deal) through the API; they are validated,
filterable and sortable, in the OpenAPI document, exported, imported, usable in
a segment and as a scoring feature — on SQLite and PostgreSQL — and renaming
keeps the data while removing asks first and is audited."""

from __future__ import annotations

import csv
import io
import json

import prison
import pytest
from sqlalchemy import func, select

from trellis.db import db
from trellis.models import AuditEntry, CustomField, CustomValue

from tests.test_browser import browser, watched_page  # noqa: F401 - fixtures

PLUGINS = ["sales", "marketing", "integrations"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request, trellis_app_factory, api_login):
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    app = trellis_app_factory(plugins=PLUGINS, database_url=database_url)
    client = app.test_client()
    return app, client, api_login(client)


def add_field(client, headers, **definition):
    answer = client.post("/api/v1/custom_field/", headers=headers, json=definition)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def listed(client, headers, resource, **q):
    answer = client.get(f"/api/v1/{resource}/?q={prison.dumps(q)}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["result"]


def contact_fields(client, headers):
    add_field(client, headers, model="contact", key="employees", label="Employees",
              type="number", min_value=1, max_value=100000)
    add_field(client, headers, model="contact", key="tier", label="Tier", type="choice",
              choices=["Gold", "Silver"])
    add_field(client, headers, model="contact", key="interests", label="Interests",
              type="multi_choice", choices=["golf", "sailing", "chess"])
    add_field(client, headers, model="contact", key="budget", label="Budget", type="money")
    add_field(client, headers, model="contact", key="vip", label="VIP", type="boolean")
    add_field(client, headers, model="contact", key="met_on", label="Met on", type="date")


def new_contact(client, headers, first, **custom):
    answer = client.post("/api/v1/contact/", headers=headers,
                         json={"first_name": first, "last_name": "Test", **custom})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def test_contact_and_deal_fields_end_to_end(site):
    app, client, headers = site
    contact_fields(client, headers)

    # --- writes: accepted, returned as top-level cf_* keys
    ada = client.post("/api/v1/contact/", headers=headers, json={
        "first_name": "Ada", "last_name": "Lovelace", "cf_employees": 50, "cf_tier": "Gold",
        "cf_interests": ["chess", "golf"], "cf_budget": "1250.50", "cf_vip": True,
        "cf_met_on": "2026-03-01"})
    assert ada.status_code == 201, ada.get_json()
    body = ada.get_json()
    ada_id = body["id"]
    assert {k: v for k, v in body["result"].items() if k.startswith("cf_")} == {
        "cf_employees": 50, "cf_tier": "Gold", "cf_interests": ["golf", "chess"],
        "cf_budget": 1250.5, "cf_vip": True, "cf_met_on": "2026-03-01"}
    bob_id = new_contact(client, headers, "Bob", cf_employees=500, cf_tier="Silver",
                         cf_interests=["sailing"])
    cy_id = new_contact(client, headers, "Cy")  # no custom values at all

    # --- rejected with the field named (400, never 500), nothing stored
    for bad, field, message in (
            ({"cf_employees": 0}, "cf_employees", "Must be at least 1."),
            ({"cf_employees": "many"}, "cf_employees", "Not a valid number."),
            ({"cf_tier": "Bronze"}, "cf_tier", "Must be one of: Gold, Silver."),
            ({"cf_budget": "1.234"}, "cf_budget", "At most 2 decimal places."),
            ({"cf_met_on": "yesterday"}, "cf_met_on", "Not a valid date (YYYY-MM-DD)."),
            ({"cf_interests": ["golf", "polo"]}, "cf_interests",
             "Not a choice: polo. Must be among: golf, sailing, chess."),
            ({"cf_shoe_size": 42}, "cf_shoe_size", "Unknown field.")):
        answer = client.post("/api/v1/contact/", headers=headers,
                             json={"first_name": "Bad", "last_name": "Input", **bad})
        assert answer.status_code == 400, (bad, answer.get_json())
        assert answer.get_json()["message"][field] == [message]
    both = client.post("/api/v1/contact/", headers=headers,
                       json={"first_name": "", "last_name": "X", "cf_employees": -3})
    assert both.status_code == 400
    assert set(both.get_json()["message"]) == {"first_name", "cf_employees"}
    with app.app_context():
        # Ada 7 rows (two interests), Bob 3; none of the refused records
        assert db.session.scalar(select(func.count()).select_from(CustomValue)) == 10

    # --- read back, filter (index-backed subqueries) and sort
    one = client.get(f"/api/v1/contact/{bob_id}", headers=headers).get_json()["result"]
    assert (one["cf_employees"], one["cf_tier"], one["cf_vip"]) == (500, "Silver", None)

    def ids(**q):
        return [r["first_name"] for r in listed(client, headers, "contact", **q)]

    assert ids(filters=[{"col": "cf_employees", "opr": "gt", "value": 100}]) == ["Bob"]
    assert ids(filters=[{"col": "cf_employees", "opr": "lte", "value": "50"}]) == ["Ada"]
    assert ids(filters=[{"col": "cf_tier", "opr": "neq", "value": "Gold"}]) == ["Bob", "Cy"]
    assert ids(filters=[{"col": "cf_interests", "opr": "eq", "value": "golf"}]) == ["Ada"]
    assert ids(filters=[{"col": "cf_vip", "opr": "eq", "value": True}]) == ["Ada"]
    assert ids(filters=[{"col": "cf_tier", "opr": "empty", "value": True}]) == ["Cy"]
    assert ids(filters=[{"col": "cf_met_on", "opr": "gte", "value": "2026-01-01"},
                        {"col": "first_name", "opr": "sw", "value": "A"}]) == ["Ada"]
    assert ids(order_column="cf_employees", order_direction="desc") == ["Bob", "Ada", "Cy"]
    assert ids(order_column="cf_employees", order_direction="asc") == ["Ada", "Bob", "Cy"]
    bad = client.get("/api/v1/contact/?q=" + prison.dumps(
        {"filters": [{"col": "cf_employees", "opr": "gt", "value": "lots"}]}), headers=headers)
    assert bad.status_code == 400 and "cf_employees" in bad.get_json()["message"]
    bad = client.get("/api/v1/contact/?q=" + prison.dumps(
        {"filters": [{"col": "cf_tier", "opr": "gt", "value": "Gold"}]}), headers=headers)
    assert bad.status_code == 400 and "cf_tier" in bad.get_json()["message"]

    # --- update: only the fields given change; the change is audited
    answer = client.put(f"/api/v1/contact/{ada_id}", headers=headers,
                        json={"cf_employees": 60, "cf_interests": []})
    assert answer.status_code == 200, answer.get_json()
    one = client.get(f"/api/v1/contact/{ada_id}", headers=headers).get_json()["result"]
    assert (one["cf_employees"], one["cf_interests"], one["cf_tier"]) == (60, [], "Gold")
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.model == "contact", AuditEntry.record_id == str(ada_id),
            AuditEntry.action == "updated"))
        assert entry.changes["cf_employees"] == {"old": "50", "new": "60"}

    # --- the OpenAPI document (built per request) lists them with their rules
    spec = client.get("/api/v1/_openapi", headers=headers).get_json()
    props = spec["components"]["schemas"]["ContactApi.get"]["properties"]
    assert props["cf_employees"]["minimum"] == 1 and props["cf_employees"]["maximum"] == 100000
    assert props["cf_tier"]["enum"] == ["Gold", "Silver", None]
    assert spec["components"]["schemas"]["ContactApi.post"]["properties"]["cf_met_on"][
        "format"] == "date"

    # --- a plugin model: the sales plugin's Deal, with a required field and a link
    add_field(client, headers, model="deal", key="region", label="Region", type="choice",
              choices=["EMEA", "APAC"], required=True)
    add_field(client, headers, model="deal", key="champion", label="Champion", type="link",
              target_model="contact")
    missing = client.post("/api/v1/deal/", headers=headers, json={"name": "No region"})
    assert missing.status_code == 400
    assert missing.get_json()["message"]["cf_region"] == ["Missing data for required field."]
    ghost = client.post("/api/v1/deal/", headers=headers,
                        json={"name": "Ghost", "cf_region": "EMEA", "cf_champion": 999999})
    assert ghost.get_json()["message"] == {"cf_champion": ["No contact with id 999999."]}
    for name, region in (("Alpha", "EMEA"), ("Beta", "APAC"), ("Gamma", "EMEA")):
        answer = client.post("/api/v1/deal/", headers=headers, json={
            "name": name, "cf_region": region, "cf_champion": ada_id})
        assert answer.status_code == 201, answer.get_json()
    assert [d["name"] for d in listed(client, headers, "deal", filters=[
        {"col": "cf_region", "opr": "eq", "value": "EMEA"}])] == ["Alpha", "Gamma"]
    assert [d["cf_champion"] for d in listed(client, headers, "deal")] == [ada_id] * 3
    spec = client.get("/api/v1/_openapi", headers=headers).get_json()
    assert "cf_region" in spec["components"]["schemas"]["DealApi.post"]["required"]

    # --- usable in a segment (the marketing plugin's rule builder)
    rules = {"and": [{"type": "custom_field", "field": "cf_employees", "op": "gte",
                      "value": 60},
                     {"not": {"type": "custom_field", "field": "cf_tier", "op": "eq",
                              "value": "silver"}}]}
    preview = client.post("/api/v1/segment/_preview", headers=headers, json={"rules": rules})
    assert preview.status_code == 200, preview.get_json()
    assert [r["first_name"] for r in preview.get_json()["rows"]] == ["Ada"]
    wrong = client.post("/api/v1/segment/_preview", headers=headers, json={"rules": {
        "type": "custom_field", "field": "cf_nothing", "op": "eq", "value": 1}})
    assert wrong.status_code == 400 and "field" in json.dumps(wrong.get_json())
    with app.app_context():  # and as a customer feature (scoring reads features by name)
        from trellis import features

        with app.test_request_context():
            assert features.values(db.session, "cf_employees") == {ada_id: 60, bob_id: 500}

    # --- reports: filter, group and measure by custom fields
    report = client.post("/api/v1/report/run", headers=headers, json={
        "model": "contact", "filters": [{"field": "cf_employees", "op": "gte", "value": 1}],
        "group_by": [{"field": "cf_tier"}],
        "measures": [{"op": "count"}, {"op": "sum", "field": "cf_employees"}]})
    assert report.status_code == 200, report.get_json()
    assert report.get_json()["result"]["rows"] == [["Gold", 1, 60], ["Silver", 1, 500]]
    by_region = client.post("/api/v1/report/run", headers=headers, json={
        "model": "deal", "group_by": [{"field": "cf_region"}], "measures": [{"op": "count"}]})
    assert by_region.get_json()["result"]["rows"] == [["APAC", 1], ["EMEA", 2]]

    # --- deleting a record deletes its values
    assert client.delete(f"/api/v1/contact/{bob_id}", headers=headers).status_code == 200
    with app.app_context():
        assert not db.session.scalar(select(func.count()).select_from(CustomValue).where(
            CustomValue.record_id == bob_id, CustomValue.field_id.in_(
                select(CustomField.id).where(CustomField.model == "contact"))))
    assert cy_id


def test_export_and_import_carry_custom_fields(site, web_login):
    app, client, headers = site
    contact_fields(client, headers)
    new_contact(client, headers, "Ada", cf_employees=12, cf_interests=["golf", "chess"],
                cf_vip=True)
    new_contact(client, headers, "Bob", cf_employees=7)

    web = app.test_client()
    web_login(web)
    answer = web.get("/contactview/export/csv?_flt_2_cf_employees=10")  # greater than
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["first_name"], r["cf_employees"], r["cf_interests"], r["cf_vip"])
            for r in rows] == [("Ada", "12", "golf; chess", "Yes")]

    text = ("First,Last,Employees,Tier,Interests,VIP\n"
            "Cy,Import,30,Gold,sailing; golf,yes\n"
            "Dee,Import,lots,Gold,,\n"
            "Eve,Import,5,Platinum,,no\n")
    data = {"file": (io.BytesIO(text.encode()), "people.csv"), "model": "contact",
            "match_on": "none", "mapping": json.dumps({
                "First": "first_name", "Last": "last_name", "Employees": "cf_employees",
                "Tier": "cf_tier", "Interests": "cf_interests", "VIP": "cf_vip"})}
    started = client.post("/api/v1/import/", headers=headers, data=data,
                          content_type="multipart/form-data")
    assert started.status_code == 202, started.get_json()
    status = started.get_json()
    assert (status["created"], status["errors"]) == (1, 2)
    report = client.get(f"/api/v1/import/{status['id']}/errors",
                        headers=headers).get_json()["result"]
    assert [(r["row"], r["field"]) for r in report] == [(3, "cf_employees"), (4, "cf_tier")]
    cy = listed(client, headers, "contact", filters=[
        {"col": "first_name", "opr": "eq", "value": "Cy"}])[0]
    assert (cy["cf_employees"], cy["cf_tier"], cy["cf_interests"], cy["cf_vip"]) == (
        30, "Gold", ["golf", "sailing"], True)  # in the order of the choices
    # an update by e-mail-less match is not possible here; revert removes the values too
    assert client.post(f"/api/v1/import/{status['id']}/revert",
                       headers=headers).status_code == 200
    with app.app_context():
        assert not db.session.scalar(select(func.count()).select_from(CustomValue).where(
            CustomValue.record_id == cy["id"]))


def test_rename_keeps_data_and_removal_asks_and_is_audited(site):
    app, client, headers = site
    fid = add_field(client, headers, model="contact", key="shoe", label="Shoe size",
                    type="number")
    ada = new_contact(client, headers, "Ada", cf_shoe=38)
    renamed = client.put(f"/api/v1/custom_field/{fid}", headers=headers,
                         json={"label": "Shoe size (EU)"})
    assert renamed.status_code == 200, renamed.get_json()
    one = client.get(f"/api/v1/contact/{ada}", headers=headers).get_json()["result"]
    assert one["cf_shoe"] == 38  # same key, same data
    fixed = client.put(f"/api/v1/custom_field/{fid}", headers=headers,
                       json={"key": "shoes", "type": "text"})
    assert fixed.status_code == 400
    assert set(fixed.get_json()["message"]) == {"key", "type"}
    # definitions are checked: naming the field
    for bad, field in (({"key": "Bad Key"}, "key"), ({"type": "colour"}, "type"),
                       ({"type": "choice"}, "choices"), ({"type": "link"}, "target_model"),
                       ({"min_value": 5, "max_value": 1}, "max_value"),
                       ({"model": "nothing"}, "model"), ({"key": "shoe"}, "key")):
        definition = {"model": "contact", "key": "other", "label": "Other",
                      "type": "number", **bad}
        answer = client.post("/api/v1/custom_field/", headers=headers, json=definition)
        assert answer.status_code == 400 and field in answer.get_json()["message"], bad
    refused = client.delete(f"/api/v1/custom_field/{fid}", headers=headers)
    assert refused.status_code == 400
    assert "deletes its 1 value(s)" in refused.get_json()["message"]["confirm"][0]
    done = client.delete(f"/api/v1/custom_field/{fid}?confirm=shoe", headers=headers)
    assert done.status_code == 200 and done.get_json()["values_deleted"] == 1
    one = client.get(f"/api/v1/contact/{ada}", headers=headers).get_json()["result"]
    assert "cf_shoe" not in one
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CustomValue)) == 0
        trail = [(a.action, a.record_id) for a in db.session.scalars(
            select(AuditEntry).where(AuditEntry.model == "custom_field")
            .order_by(AuditEntry.id))]
        assert trail == [("created", str(fid)), ("renamed", str(fid)), ("deleted", str(fid))]


def test_a_new_field_reaches_another_process_without_a_restart(trellis_app_factory,
                                                                 api_login, tmp_path):
    """Two apps on one database stand for two gunicorn workers."""
    from trellis.testing import build_app, dispose

    first = trellis_app_factory(config={"TRELLIS_CUSTOM_FIELDS_TTL": 0})
    second = build_app(tmp_path, config={"TRELLIS_CUSTOM_FIELDS_TTL": 0})
    try:
        one, two = first.test_client(), second.test_client()
        h1, h2 = api_login(one), api_login(two)
        cid = new_contact(two, h2, "Ada")
        assert "cf_score" not in two.get(f"/api/v1/contact/{cid}", headers=h2).get_json()[
            "result"]
        add_field(one, h1, model="contact", key="score", label="Score", type="number")
        assert two.put(f"/api/v1/contact/{cid}", headers=h2,
                       json={"cf_score": 7}).status_code == 200
        assert two.get(f"/api/v1/contact/{cid}", headers=h2).get_json()["result"][
            "cf_score"] == 7
    finally:
        dispose(second)


def test_forms_lists_and_filters_in_the_web_ui(trellis_app_factory, web_login):
    from trellis.testing import csrf_token

    app = trellis_app_factory()
    client = app.test_client()
    web_login(client)
    page = client.get("/customfields/add").get_data(as_text=True)
    answer = client.post("/customfields/add", data={
        "csrf_token": csrf_token(page), "model": "contact", "key": "size", "label": "Size",
        "type": "number", "min_value": "1", "max_value": "", "choices": "", "position": "0",
        "active": "y"})
    assert answer.status_code == 302
    bad = client.post("/customfields/add", data={
        "csrf_token": csrf_token(page), "model": "contact", "key": "9x", "label": "",
        "type": "choice", "active": "y"}).get_data(as_text=True)
    assert 'data-field="key"' in bad and 'data-field="choices"' in bad
    form = client.get("/contactview/add").get_data(as_text=True)
    assert 'name="cf_size"' in form
    saved = client.post("/contactview/add", data={
        "csrf_token": csrf_token(form), "first_name": "Ada", "last_name": "L",
        "cf_size": "0"}).get_data(as_text=True)
    assert "Must be at least 1." in saved  # under the field, nothing stored
    client.post("/contactview/add", data={"csrf_token": csrf_token(form),
                                          "first_name": "Ada", "last_name": "L",
                                          "cf_size": "5"})
    client.post("/contactview/add", data={"csrf_token": csrf_token(form),
                                          "first_name": "Bob", "last_name": "M"})
    listing = client.get("/contactview/list/?_flt_3_cf_size=3").get_data(as_text=True)
    assert "Size" in listing and "Ada" in listing and "Bob" not in listing
    with app.app_context():
        from trellis.models import Contact

        ada = db.session.scalar(select(Contact).where(Contact.first_name == "Ada"))
    edit = client.get(f"/contactview/edit/{ada.id}").get_data(as_text=True)
    assert 'name="cf_size"' in edit and 'value="5"' in edit
    remove = client.get("/customfields/").get_data(as_text=True)
    assert "cf_size" in remove


def test_the_browser_adds_a_field_saves_a_view_and_sees_both(
        trellis_app_factory, watched_page):  # noqa: F811 - fixture
    pytest.importorskip("playwright")
    from playwright.sync_api import expect

    from tests.test_browser import log_in, serve
    from trellis.models import Contact

    page, watch = watched_page
    app = trellis_app_factory()
    with app.app_context():
        db.session.add_all([Contact(first_name="Ada", last_name="Lovelace"),
                            Contact(first_name="Grace", last_name="Hopper")])
        db.session.commit()
    with serve(app) as base:
        log_in(page, base)
        page.goto(f"{base}/customfields/")
        with page.expect_navigation():
            page.click("#add-custom-field")
        page.select_option("#model", "contact")
        page.fill("#label", "Industry size")
        page.fill("#key", "industry_size")
        page.select_option("#type", "number")
        with page.expect_navigation():
            page.click("#save-custom-field")
        expect(page.locator("#custom-fields-table")).to_contain_text("cf_industry_size")
        # give Grace a value through the record's edit form
        page.goto(f"{base}/contactview/list/?_flt_0_first_name=Grace")
        with page.expect_navigation():
            page.click("table.table-bordered a[href*='/edit/']")
        page.fill("input[name=cf_industry_size]", "250")
        with page.expect_navigation():
            page.click("form button[type=submit], form input[type=submit]")
        page.goto(f"{base}/contactview/list/?_flt_2_cf_industry_size=100")
        table = page.locator("table.table-bordered")
        expect(table).to_contain_text("Industry size")
        expect(table).to_contain_text("Hopper")
        expect(table).not_to_contain_text("Lovelace")
        page.fill("#save-view input[name=name]", "Big industries")
        with page.expect_navigation():
            page.click("#save-view button[type=submit]")
        expect(page.locator(".alert")).to_contain_text("Saved the view")
        page.goto(f"{base}/contactview/list/")
        page.click("#saved-views > button")
        with page.expect_navigation():
            page.click("#saved-views a.saved-view:has-text('Big industries')")
        table = page.locator("table.table-bordered")
        expect(table).to_contain_text("Industry size")
        expect(table).to_contain_text("250")
        expect(table).not_to_contain_text("Lovelace")
        watch.assert_clean()


def test_filters_and_sorting_use_the_value_indexes(site):
    """The filter subquery and the sort join are answered from the (field_id, value)
    and (field_id, record_id) indexes, not by scanning values."""
    from sqlalchemy import text

    from trellis import customfields
    from trellis.models import Contact

    app, client, headers = site
    add_field(client, headers, model="contact", key="size", label="Size", type="number")
    new_contact(client, headers, "Ada", cf_size=5)
    with app.test_request_context():
        defn = customfields.field("contact", "cf_size")
        # a realistic spread of values (records need not exist for the plan)
        customfields.write_values(db.session, "contact", {
            1000 + i: {"cf_size": i} for i in range(3000)})
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        where = customfields.record_condition(Contact.id, defn, "gt", 2990)
        ordered = customfields.order_by(db.session.query(Contact.id), Contact, defn, "asc")
        dialect = db.engine.dialect
        plans = []
        for stmt in (select(Contact.id).where(where), ordered.statement):
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            if dialect.name == "sqlite":
                plans.append(" ".join(str(r[-1]) for r in db.session.execute(
                    text("EXPLAIN QUERY PLAN " + sql))))
            else:
                db.session.execute(text("SET LOCAL enable_seqscan = off"))
                plans.append(" ".join(r[0] for r in db.session.execute(text("EXPLAIN " + sql))))
        for plan in plans:  # the planner picks which of our indexes; never a scan
            assert "ix_trellis_custom_value_" in plan, plan
            assert "Seq Scan on trellis_custom_value" not in plan, plan
            assert "SCAN trellis_custom_value" not in plan, plan
        if dialect.name == "sqlite":  # 1 contact, 3000 values: filtered by value
            assert "ix_trellis_custom_value_num" in plans[0], plans[0]


def test_merging_contacts_keeps_the_winners_values_and_undo_restores(trellis_app_factory,
                                                                     api_login):
    from trellis import merge

    app = trellis_app_factory()
    client = app.test_client()
    headers = api_login(client)
    add_field(client, headers, model="contact", key="size", label="Size", type="number")
    add_field(client, headers, model="contact", key="tier", label="Tier", type="choice",
              choices=["Gold", "Silver"])
    winner = new_contact(client, headers, "Ada", cf_size=5)
    first = new_contact(client, headers, "Ada2", cf_size=7, cf_tier="Silver")
    second = new_contact(client, headers, "Ada3", cf_tier="Gold")
    with app.test_request_context():
        result = merge.merge(db.session, "contact", winner, [first, second])
        db.session.commit()
    one = client.get(f"/api/v1/contact/{winner}", headers=headers).get_json()["result"]
    assert (one["cf_size"], one["cf_tier"]) == (5, "Silver")  # winner's own, first loser's
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CustomValue)) == 2
    with app.test_request_context():
        merge.undo(db.session, result["merge_id"])
        db.session.commit()
    back = client.get(f"/api/v1/contact/{second}", headers=headers).get_json()["result"]
    assert back["cf_tier"] == "Gold"
    back = client.get(f"/api/v1/contact/{first}", headers=headers).get_json()["result"]
    assert (back["cf_size"], back["cf_tier"]) == (7, "Silver")
