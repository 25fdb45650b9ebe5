"""The report builder: results equal hand-computed aggregates (SQLite and
PostgreSQL, date buckets included), record rules, field errors, saved and shared
reports on the dashboard, CSV/XLSX export."""

from __future__ import annotations

import re

import csv
import io
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from trellis.db import db
from trellis.models import SavedReport

PW = "pw-123456"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# (name, owner, created_on UTC, amount, probability)
DEALS = [
    ("D1", "rep", "2024-01-15T10:00:00", "100.00", 10),   # Monday: week 2024-01-15
    ("D2", "rep", "2024-01-31T23:30:00", "250.50", 20),   # Wednesday: week 2024-01-29
    ("D3", "rep", "2024-02-01T00:10:00", "50.00", 30),    # Thursday: week 2024-01-29
    ("D4", "rep2", "2024-04-02T12:00:00", "1000.00", 40),  # Tuesday: week 2024-04-01
    ("D5", "rep2", "2024-03-31T22:00:00", "10.00", 50),   # Sunday: week 2024-03-25
    ("D6", None, "2024-07-01T00:00:00", "5.00", 60),      # Monday, nobody's
    ("=HYPERLINK(\"http://x\")", "rep2", "2024-07-02T09:00:00", "1.00", 70),
]


def _build(trellis_app_factory, make_user, api_login, database_url=None):
    app = trellis_app_factory(plugins=["sales"], database_url=database_url)
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"]),
           "viewer": make_user(app, "viewer", ["CRM Viewer"])}
    from trellis_sales.models import Deal

    with app.app_context():
        for name, owner, created, amount, probability in DEALS:
            db.session.add(Deal(name=name, owner_id=ids.get(owner), created_on=_at(created),
                                amount=Decimal(amount), probability=probability))
        db.session.commit()
    client = app.test_client()
    headers = {name: api_login(client, name, PW) for name in ("rep", "rep2", "viewer")}
    headers["admin"] = api_login(client)
    return app, client, headers, ids


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def both(request, trellis_app_factory, make_user, api_login):
    """The data on SQLite, and again on PostgreSQL."""
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    return _build(trellis_app_factory, make_user, api_login, database_url)


@pytest.fixture
def site(trellis_app_factory, make_user, api_login):
    return _build(trellis_app_factory, make_user, api_login)


def run(client, headers, **definition):
    response = client.post("/api/v1/report/run", headers=headers, json=definition)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["result"]


def table(result):
    return [tuple(row) for row in result["rows"]]


MEASURES = [{"op": "count"}, {"op": "sum", "field": "amount"}]


def test_date_buckets_and_measures_equal_hand_computed_figures(both):
    app, client, headers, ids = both
    admin = headers["admin"]
    not_x = [{"field": "amount", "op": "gte", "value": 5}]  # leaves out the 1.00 deal
    by = lambda bucket: run(client, admin, model="deal", filters=not_x,  # noqa: E731
                            group_by=[{"field": "created_on", "bucket": bucket}],
                            measures=MEASURES)
    assert table(by("month")) == [("2024-01", 2, 350.5), ("2024-02", 1, 50),
                                  ("2024-03", 1, 10), ("2024-04", 1, 1000), ("2024-07", 1, 5)]
    assert table(by("quarter")) == [("2024-Q1", 4, 410.5), ("2024-Q2", 1, 1000),
                                    ("2024-Q3", 1, 5)]
    assert table(by("week")) == [("2024-01-15", 1, 100), ("2024-01-29", 2, 300.5),
                                 ("2024-03-25", 1, 10), ("2024-04-01", 1, 1000),
                                 ("2024-07-01", 1, 5)]
    assert table(by("day")) == [("2024-01-15", 1, 100), ("2024-01-31", 1, 250.5),
                                ("2024-02-01", 1, 50), ("2024-03-31", 1, 10),
                                ("2024-04-02", 1, 1000), ("2024-07-01", 1, 5)]
    assert table(by("year")) == [("2024", 6, 1415.5)]

    q1 = run(client, admin, model="deal", filters=[
        {"field": "created_on", "op": "gte", "value": "2024-01-01"},
        {"field": "created_on", "op": "lt", "value": "2024-04-01T00:00:00Z"}],
        measures=[{"op": "count"}, {"op": "sum", "field": "amount"},
                  {"op": "avg", "field": "amount"}, {"op": "min", "field": "amount"},
                  {"op": "max", "field": "amount"}, {"op": "avg", "field": "probability"}])
    # D1, D2, D3, D5: 410.50 / 4 = 102.625; probabilities (10+20+30+50)/4 = 27.5
    assert table(q1) == [(4, 410.5, 102.625, 10, 250.5, 27.5)]
    assert [c["label"] for c in q1["columns"]] == [
        "Count", "Sum of amount", "Average of amount", "Min of amount", "Max of amount",
        "Average of probability"]
    assert q1["chart"]["kind"] == "kpi" and q1["chart"]["data"]["value"] == "4"

    owners = run(client, admin, model="deal", group_by=[{"field": "owner_id"}],
                 measures=MEASURES, order_by="sum:amount", desc=True)
    assert table(owners) == [(ids["rep2"], 3, 1011), (ids["rep"], 3, 400.5), (None, 1, 5)]
    assert owners["columns"][0]["labels"] == {str(ids["rep2"]): "rep2", str(ids["rep"]): "rep"}

    pivot = run(client, admin, model="deal", filters=[
        {"field": "owner_id", "op": "is_null", "value": False}],
        group_by=[{"field": "created_on", "bucket": "quarter"}, {"field": "owner_id"}],
        chart="bars")
    assert table(pivot) == [("2024-Q1", ids["rep"], 3), ("2024-Q1", ids["rep2"], 1),
                            ("2024-Q2", ids["rep2"], 1), ("2024-Q3", ids["rep2"], 1)]
    chart = pivot["chart"]["data"]
    assert chart["labels"] == ["2024-Q1", "2024-Q2", "2024-Q3"]
    assert chart["series"] == [{"label": "rep", "values": [3, None, None]},
                               {"label": "rep2", "values": [1, 1, 1]}]
    assert chart["x_label"] == "Created on (quarter)" and chart["y_label"] == "Count"

    names = run(client, admin, model="deal", filters=[
        {"field": "name", "op": "in", "value": ["D1", "D4"]}], group_by=[{"field": "name"}])
    assert table(names) == [("D1", 1), ("D4", 1)]
    assert table(run(client, admin, model="deal", filters=[
        {"field": "name", "op": "starts_with", "value": "d"}])) == [(6,)]


def test_a_reps_report_counts_only_what_the_rep_may_see(both):
    app, client, headers, ids = both
    definition = {"model": "deal", "group_by": [{"field": "created_on", "bucket": "month"}],
                  "measures": MEASURES}
    assert table(run(client, headers["rep"], **definition)) == [("2024-01", 2, 350.5),
                                                                ("2024-02", 1, 50)]
    assert table(run(client, headers["rep2"], **definition)) == [
        ("2024-03", 1, 10), ("2024-04", 1, 1000), ("2024-07", 1, 1)]
    total = run(client, headers["admin"], model="deal")
    assert table(total) == [(7,)]


def test_bad_definitions_answer_400_naming_the_field(site):
    app, client, headers, ids = site
    rep = headers["rep"]

    def error(**definition):
        response = client.post("/api/v1/report/run", headers=rep, json=definition)
        assert response.status_code == 400, response.get_json()
        return response.get_json()["message"]

    assert error(model="deal", filters=[{"field": "secret; DROP TABLE", "op": "eq",
                                         "value": 1}]) == {
        "filters": {"0": {"field": ["Deal has no field 'secret; DROP TABLE' you may report on."]}}}
    assert error(model="deal", group_by=[{"field": "payload"}]) == {
        "group_by": {"0": {"field": ["Deal has no field 'payload' you may report on."]}}}
    assert error(model="deal", group_by=[{"field": "amount"}]) == {
        "group_by": {"0": {"field": ["Amount is a measure, not a category: sum or average "
                                     "it instead."]}}}
    assert error(model="deal", group_by=[{"field": "name", "bucket": "month"}]) == {
        "group_by": {"0": {"bucket": ["Name is not a date."]}}}
    assert error(model="deal", group_by=[{"field": "created_on"}]) == {
        "group_by": {"0": {"bucket": ["Group Created on by day, week, month, quarter or year."]}}}
    assert error(model="deal", measures=[{"op": "sum", "field": "name"}]) == {
        "measures": {"0": {"op": ["Cannot sum Name (text)."]}}}
    assert error(model="deal", measures=[{"op": "avg"}]) == {
        "measures": {"0": {"field": ["Choose the field to avg."]}}}
    assert error(model="deal", filters=[{"field": "amount", "op": "gte", "value": "lots"}]) == {
        "filters": {"0": {"value": ["Not a valid number."]}}}
    assert error(model="deal", filters=[{"field": "amount", "op": "contains",
                                         "value": "1"}])["filters"]["0"]["op"]
    assert "bucket" in error(model="deal", group_by=[{"field": "created_on",
                                                      "bucket": "fortnight"}])["group_by"]["0"]
    assert error(model="deal", order_by="sum:amount") == {"order_by": ["Order by one of count."]}
    assert error(model="deal", group_by=[{"field": "name"}] * 3) == {
        "group_by": ["Group by at most 2 fields."]}
    assert error(model="nonsense") == {"model": ["No model 'nonsense' you may report on."]}
    assert set(error(model="deal", limit=0, chart="radar")) == {"limit", "chart"}
    # a viewer may not read deals: the model does not exist for them
    response = client.post("/api/v1/report/run", headers=headers["viewer"],
                           json={"model": "deal"})
    assert response.status_code == 400
    assert response.get_json()["message"] == {"model": ["No model 'deal' you may report on."]}
    assert "deal" not in [m["name"] for m in client.get(
        "/api/v1/report/models", headers=headers["viewer"]).get_json()["result"]]
    assert client.post("/api/v1/report/run", json={"model": "deal"}).status_code == 401


def test_models_list_fields_of_the_registry_schema(site):
    app, client, headers, ids = site
    models = {m["name"]: m for m in client.get(
        "/api/v1/report/models", headers=headers["rep"]).get_json()["result"]}
    fields = {f["name"]: f for f in models["deal"]["fields"]}
    assert fields["amount"]["measures"] == ["count", "sum", "avg", "min", "max"]
    assert fields["created_on"]["buckets"] == ["day", "week", "month", "quarter", "year"]
    assert fields["name"]["ops"] == ["eq", "ne", "contains", "starts_with", "in", "is_null"]
    contact = {f["name"] for f in models["contact"]["fields"]}
    assert {"first_name", "email", "owner_id", "created_on"} <= contact


def test_saved_shared_reports_run_under_the_viewers_rules_and_go_on_the_dashboard(site):
    app, client, headers, ids = site
    definition = {"model": "deal", "group_by": [{"field": "owner_id"}], "chart": "bars"}
    bad = client.post("/api/v1/report/", headers=headers["rep"],
                      json={"name": "", "definition": {"model": "deal", "measures": []}})
    assert bad.status_code == 400 and set(bad.get_json()["message"]) == {"name"}
    bad = client.post("/api/v1/report/", headers=headers["rep"],
                      json={"name": "X", "definition": {"model": "deal", "measures": []}})
    assert bad.status_code == 400 and set(bad.get_json()["message"]) == {"measures"}
    created = client.post("/api/v1/report/", headers=headers["rep"],
                          json={"name": "Deals by owner", "definition": definition})
    assert created.status_code == 201, created.get_json()
    report = created.get_json()["result"]
    assert report["widget"] == f"core.report_{report['id']}"
    assert report["definition"]["measures"] == [{"op": "count", "field": None}]

    def listed(who):
        return [r["name"] for r in client.get("/api/v1/report/",
                                              headers=headers[who]).get_json()["result"]]

    assert listed("rep") == ["Deals by owner"] and listed("rep2") == []
    assert client.get(f"/api/v1/report/{report['id']}", headers=headers["rep2"]).status_code == 404
    shared = client.put(f"/api/v1/report/{report['id']}", headers=headers["rep"],
                        json={"name": "Deals by owner", "shared": True, "definition": definition})
    assert shared.status_code == 200
    assert listed("rep2") == ["Deals by owner"]
    # rep2 runs it and sees only their own deals; they may not change it
    mine = client.get(f"/api/v1/report/{report['id']}", headers=headers["rep2"]).get_json()
    assert mine["result"]["result"]["rows"] == [[ids["rep2"], 3]]
    assert client.put(f"/api/v1/report/{report['id']}", headers=headers["rep2"],
                      json={"name": "Mine now", "definition": definition}).status_code == 404
    assert client.delete(f"/api/v1/report/{report['id']}",
                         headers=headers["rep2"]).status_code == 404

    # on rep2's dashboard, as a widget
    widget = report["widget"]
    layout = client.get("/api/v1/dashboard/layout", headers=headers["rep2"]).get_json()["result"]
    assert widget in [w["name"] for w in layout["available"]]
    assert widget not in layout["widgets"]  # not by default
    put = client.put("/api/v1/dashboard/layout", headers=headers["rep2"],
                     json={"widgets": [widget, *layout["widgets"]]})
    assert put.status_code == 200, put.get_json()
    board = client.get("/api/v1/dashboard/", headers=headers["rep2"]).get_json()["result"]
    assert board[0]["name"] == widget and board[0]["kind"] == "bars"
    assert board[0]["data"]["labels"] == ["rep2"]
    assert board[0]["data"]["series"] == [{"label": "Count", "values": [3]}]
    # deleted by its owner: gone from rep2's dashboard, nothing breaks
    assert client.delete(f"/api/v1/report/{report['id']}",
                         headers=headers["rep"]).status_code == 200
    board = client.get("/api/v1/dashboard/", headers=headers["rep2"]).get_json()["result"]
    assert widget not in [w["name"] for w in board]
    # a viewer may run reports but not save them
    assert client.post("/api/v1/report/", headers=headers["viewer"],
                       json={"name": "V", "definition": {"model": "contact"}}).status_code == 403
    with app.app_context():
        assert db.session.query(SavedReport).count() == 0


def test_export_csv_and_xlsx_neutralise_formulas(site):
    from openpyxl import load_workbook

    app, client, headers, ids = site
    definition = {"model": "deal", "group_by": [{"field": "name"}],
                  "measures": [{"op": "sum", "field": "amount"}],
                  "filters": [{"field": "owner_id", "op": "eq", "value": ids["rep2"]}]}
    response = client.post("/api/v1/report/export?format=csv", headers=headers["admin"],
                           json=definition)
    assert response.status_code == 200
    assert re.fullmatch(r"attachment; filename=report-\d{8}-\d{6}\.csv",
                        response.headers["Content-Disposition"])
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows == [["Name", "Sum of amount"], ["'=HYPERLINK(\"http://x\")", "1"],
                    ["D4", "1000"], ["D5", "10"]]
    response = client.post("/api/v1/report/export?format=xlsx", headers=headers["admin"],
                           json=definition)
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values == [["Name", "Sum of amount"], ['=HYPERLINK("http://x")', 1], ["D4", 1000],
                      ["D5", 10]]
    assert sheet["A2"].data_type == "s"  # text, not a formula
    assert client.post("/api/v1/report/export?format=pdf", headers=headers["admin"],
                       json=definition).get_json()["message"] == {"format": ["Use csv or xlsx."]}
    # a saved report downloads under the viewer's rules
    saved = client.post("/api/v1/report/", headers=headers["rep"], json={
        "name": "My deals", "definition": {"model": "deal", "group_by": [{"field": "name"}]}})
    report_id = saved.get_json()["result"]["id"]
    body = client.get(f"/api/v1/report/{report_id}/export?format=csv",
                      headers=headers["rep"]).get_data(as_text=True)
    assert body.lstrip("\ufeff").splitlines() == ["Name,Count", "D1,1", "D2,1", "D3,1"]


def test_report_pages(site, web_login):
    app, client, headers, ids = site
    browser = app.test_client()
    web_login(browser, "rep", PW)
    page = browser.get("/reports/")
    assert page.status_code == 200 and "No saved reports yet." in page.get_data(as_text=True)
    builder = browser.get("/reports/builder").get_data(as_text=True)
    assert "/static/trellis/vendor/chartjs/chart.umd.min.js" in builder
    assert 'id="report-builder"' in builder
    assert browser.get("/reports/builder/99999").status_code == 404
    assert 'href="/reports/"' in browser.get("/").get_data(as_text=True)  # in the menu
