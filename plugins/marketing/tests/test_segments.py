"""Segments: condition trees compiled to one SQL query, checked against
hand-computed memberships (see ``conftest.seed_people``) on SQLite and
PostgreSQL; plugin condition types; the REST API (validation naming the field
path, preview, static snapshots)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from trellis import conditions, hookimpl
from trellis.conditions import ConditionType
from trellis.db import db
from trellis.models import Contact, Tag
from trellis.specs import Manifest

from conftest import seed_people


class ShortNames:
    """A test plugin contributing a condition type through ``trellis_condition_types``."""

    @hookimpl
    def trellis_manifest(self):
        return Manifest(label="Short names (tests)")

    @hookimpl
    def trellis_condition_types(self):
        def check(node):
            n = node.get("max")
            return {} if isinstance(n, int) and n > 0 else {"max": ["Must be a positive int."]}

        def compile_(node, contact_id):
            from sqlalchemy import exists, func, select

            return exists(select(Contact.id).where(
                Contact.id == contact_id, func.length(Contact.first_name) <= node["max"]))

        return [ConditionType("shortnames.first_name_len", "Short first name", check,
                              compile_)]


CASES = [
    ({"type": "tag", "tag": "vip"}, {"ann", "cat"}),
    ({"not": {"type": "field", "field": "email", "op": "contains", "value": "ACME"}},
     {"bob", "cat", "eve"}),
    ({"type": "field", "field": "email", "op": "is_empty"}, {"bob"}),
    ({"type": "field", "field": "title", "op": "eq", "value": "ceo"}, {"eve"}),
    ({"type": "field", "field": "account.country", "op": "ne", "value": "DE"},
     {"bob", "cat", "eve"}),
    ({"type": "field", "field": "account.industry", "op": "in", "value": ["tech", "x"]},
     {"cat"}),
    ({"type": "activity", "activity_type": "product.viewed", "within_days": 7,
      "payload": {"product_id": "$P1"}}, {"ann"}),
    ({"type": "activity", "activity_type": "product.viewed", "within_days": 30},
     {"ann", "bob", "dan"}),
    ({"type": "activity", "activity_type": "product.viewed", "within_days": 7,
      "min_count": 3}, {"dan"}),
    ({"type": "purchase", "measure": "total", "op": "gte", "value": 100}, {"ann", "dan"}),
    ({"type": "purchase", "measure": "total", "op": "lt", "value": 50}, {"bob", "cat", "eve"}),
    ({"type": "purchase", "measure": "count", "op": "eq", "value": 0}, {"cat", "eve"}),
    ({"type": "purchase", "measure": "count", "op": "gte", "value": 1, "within_days": 7},
     {"dan"}),
    ({"type": "purchase", "measure": "days_since_last", "op": "lt", "value": 30},
     {"ann", "dan"}),
    ({"type": "purchase", "measure": "last_at", "op": "older_than_days", "value": 30},
     {"bob"}),
    ({"type": "purchase", "measure": "count", "op": "gte", "value": 1,
      "product_id": "$P2"}, {"dan"}),
    ({"type": "feature", "feature": "purchase_total", "op": "gt", "value": 100},
     {"ann", "dan"}),
    ({"type": "feature", "feature": "purchase_total", "op": "ne", "value": 150},
     {"bob", "cat", "dan", "eve"}),
    ({"and": [{"or": [{"type": "tag", "tag": "VIP"},
                      {"type": "field", "field": "account.industry", "op": "eq",
                       "value": "Tech"}]},
              {"not": {"type": "purchase", "measure": "total", "op": "gt", "value": 0}}]},
     {"cat"}),
    ({"or": [{"and": [{"type": "tag", "tag": "Newsletter"},
                      {"type": "activity", "activity_type": "product.viewed",
                       "within_days": 1}]},
             {"not": {"or": [{"type": "field", "field": "email", "op": "is_not_empty"},
                             {"type": "tag", "tag": "VIP"}]}}]},
     {"dan", "bob"}),
    ({"and": [{"type": "shortnames.first_name_len", "max": 3},
              {"not": {"type": "tag", "tag": "VIP"}}]}, {"bob", "dan", "eve"}),
]


def _resolve(tree, ids):
    if isinstance(tree, dict):
        return {k: _resolve(v, ids) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_resolve(v, ids) for v in tree]
    if isinstance(tree, str) and tree.startswith("$"):
        return ids[tree[1:]]
    return tree


def _check_cases(app):
    ids = seed_people(app)
    names = {v: k for k, v in ids.items() if k.islower()}
    with app.app_context():
        statements = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        engine = db.engine
        for tree, expected in CASES:
            tree = _resolve(tree, ids)
            stmt = conditions.compile(tree)
            db.session.scalar(db.select(Contact.id).limit(1))  # (plugin states read)
            statements.clear()
            event.listen(engine, "before_cursor_execute", count)
            try:
                got = {names[i] for i in db.session.scalars(stmt)}
            finally:
                event.remove(engine, "before_cursor_execute", count)
            assert got == expected, tree
            assert len(statements) == 1, (tree, statements)  # ONE query per segment


@pytest.fixture
def short_names():
    return ShortNames()


def test_segment_sql_matches_hand_computed_results_on_sqlite(trellis_app_factory, short_names):
    app = trellis_app_factory(plugins=["sales", "marketing"],
                              extra_plugins=[("shortnames", short_names)])
    _check_cases(app)


@pytest.mark.postgres
def test_segment_sql_matches_hand_computed_results_on_postgres(trellis_app_factory,
                                                               postgres_url, short_names):
    app = trellis_app_factory(plugins=["sales", "marketing"], database_url=postgres_url,
                              extra_plugins=[("shortnames", short_names)])
    _check_cases(app)


def test_within_next_days_looks_ahead_of_the_evaluation_time(trellis_app_factory):
    """``within_next_days`` (a renewal due soon) from an earlier point in time:
    12 days ago, ann's last order (10 days ago) was due within the next 3 days;
    dan's (1 day ago) and bob's (100 days ago) were not."""
    from datetime import timedelta

    from trellis.db import utcnow

    app = trellis_app_factory(plugins=["sales", "marketing"])
    ids = seed_people(app)
    names = {v: k for k, v in ids.items() if k.islower()}
    tree = {"type": "purchase", "measure": "last_at", "op": "within_next_days", "value": 3}
    with app.app_context():
        assert conditions.validate({**tree, "value": "soon"}) == {
            "value": ["Must be a whole number of days from 0 to 36500."]}
        with conditions.as_of(utcnow() - timedelta(days=12)):
            stmt = conditions.compile(tree)
        assert {names[i] for i in db.session.scalars(stmt)} == {"ann"}
        assert list(db.session.scalars(conditions.compile(tree))) == []  # nothing due now


def test_condition_types_of_a_disabled_plugin_are_not_offered(trellis_app_factory,
                                                              short_names):
    app = trellis_app_factory(plugins=["marketing"], extra_plugins=[("shortnames", short_names)],
                              enable=["marketing"])
    with app.app_context():
        errors = conditions.validate({"type": "shortnames.first_name_len", "max": 3})
        assert "type" in errors
        assert "shortnames.first_name_len" not in conditions.available()


def test_validation_names_the_path_of_the_bad_node(trellis_app_factory):
    app = trellis_app_factory(plugins=["marketing"])
    with app.app_context():
        errors = conditions.validate({"and": [
            {"type": "tag", "tag": "x"},
            {"or": [{"type": "purchase", "measure": "total", "op": "gte", "value": "lots"},
                    {"not": {"type": "nope"}}]},
            {"type": "field", "field": "password", "op": "eq", "value": "x"},
            {"and": []},
        ]})
        assert errors == {
            "and.1.or.0.value": ["Must be a number."],
            "and.1.or.1.not.type": [
                "Must be one of: field, tag, activity, purchase, feature, custom_field (or a "
                "group: and, or, not)."],
            "and.2.field": errors["and.2.field"],
            "and.3.and": ["Must be a non-empty list of conditions."],
        }
        assert errors["and.2.field"][0].startswith("Must be one of: first_name, last_name")
        assert conditions.validate([1]) == {"(root)": [
            "Must be an object: a group (and/or/not) or a condition with a type."]}
        deep = {"type": "tag", "tag": "x"}
        for _ in range(20):
            deep = {"not": deep}
        assert any("Nested deeper" in m[0] for m in conditions.validate(deep).values())


def test_segment_api_preview_and_static_snapshot(trellis_app_factory, api_login, make_user):
    app = trellis_app_factory(plugins=["sales", "marketing"])
    ids = seed_people(app)
    make_user(app, "mk", ["Marketer"])
    make_user(app, "nobody", ["CRM User"])
    client = app.test_client()
    headers = api_login(client, "mk", "pw-123456")

    bad = client.post("/api/v1/segment/", headers=headers, json={
        "name": "Bad", "rules": {"and": [{"type": "tag", "tag": "VIP"},
                                         {"type": "activity", "within_days": -1}]}})
    assert bad.status_code == 400, bad.get_json()
    message = bad.get_json()["message"]
    assert set(message) == {"rules.and.1.activity_type", "rules.and.1.within_days"}

    vip = {"type": "tag", "tag": "VIP"}
    created = client.post("/api/v1/segment/", headers=headers, json={
        "name": "VIPs (frozen)", "kind": "static", "rules": vip})
    assert created.status_code == 201, created.get_json()
    static_id = created.get_json()["id"]
    dynamic = client.post("/api/v1/segment/", headers=headers, json={
        "name": "VIPs", "rules": vip})
    assert dynamic.status_code == 201, dynamic.get_json()
    dynamic_id = dynamic.get_json()["id"]

    preview = client.get(f"/api/v1/segment/{static_id}/preview?limit=1", headers=headers)
    assert preview.status_code == 200
    assert preview.get_json()["count"] == 2
    assert [r["id"] for r in preview.get_json()["rows"]] == [ids["ann"]]

    # eve becomes a VIP: the dynamic segment sees her, the static one only after a snapshot
    with app.app_context():
        eve = db.session.get(Contact, ids["eve"])
        eve.tags.append(db.session.query(Tag).filter_by(name="VIP").one())
        db.session.commit()
    assert client.get(f"/api/v1/segment/{dynamic_id}/preview",
                      headers=headers).get_json()["count"] == 3
    assert client.get(f"/api/v1/segment/{static_id}/preview",
                      headers=headers).get_json()["count"] == 2
    snap = client.post(f"/api/v1/segment/{static_id}/snapshot", headers=headers)
    assert snap.status_code == 200 and snap.get_json()["member_count"] == 3
    assert client.post(f"/api/v1/segment/{dynamic_id}/snapshot",
                       headers=headers).status_code == 400

    adhoc = client.post("/api/v1/segment/_preview", headers=headers, json={
        "rules": {"type": "purchase", "measure": "total", "op": "gte", "value": 100},
        "limit": 5})
    assert adhoc.status_code == 200
    body = adhoc.get_json()
    assert body["count"] == 2
    assert [(r["first_name"], r["company"]) for r in body["rows"]] == [("Ann", "Acme"),
                                                                       ("Dan", "Acme")]
    bad_preview = client.post("/api/v1/segment/_preview", headers=headers,
                              json={"rules": {"or": [{"type": "tag"}]}, "limit": 1000})
    assert bad_preview.status_code == 400
    assert set(bad_preview.get_json()["message"]) == {"rules.or.0.tag", "limit"}
    assert client.post("/api/v1/segment/_preview", headers=headers,
                       data="nope").status_code == 400

    types = client.get("/api/v1/segment/_condition_types", headers=headers).get_json()
    assert {t["name"] for t in types["types"]} >= {"field", "tag", "activity", "purchase",
                                                   "feature"}

    other = api_login(client, "nobody", "pw-123456")
    assert client.get(f"/api/v1/segment/{static_id}/preview", headers=other).status_code == 403
    assert client.post("/api/v1/segment/_preview", headers=other,
                       json={"rules": vip}).status_code == 403
    assert client.get("/api/v1/segment/", headers=other).status_code == 403
