"""Search across models: only what the user may read, through their record rules."""

from __future__ import annotations

import pytest

from trellis.db import db
from trellis.models import Contact


@pytest.fixture
def site(trellis_app_factory, make_user, api_login):
    app = trellis_app_factory(plugins=["sales"])
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"]),
           "viewer": make_user(app, "viewer", ["CRM Viewer"])}
    client = app.test_client()
    headers = {name: api_login(client, name, "pw-123456") for name in ids}
    headers["admin"] = api_login(client)
    for who, name in (("rep", "Acme rollout"), ("rep2", "Acme renewal")):
        assert client.post("/api/v1/deal/", headers=headers[who],
                           json={"name": name}).status_code == 201
    with app.app_context():
        db.session.add_all([Contact(first_name="Ada", last_name="Acme", owner_id=ids["rep"]),
                            Contact(first_name="Bob", last_name="Acme", owner_id=ids["rep2"]),
                            Contact(first_name="Per", last_name="Cent 100%")])
        db.session.commit()
    return app, client, headers


def titles(response, model):
    assert response.status_code == 200, response.get_json()
    groups = {g["model"]: g for g in response.get_json()["result"]}
    return sorted(r["title"] for r in groups[model]["results"]) if model in groups else []


def test_search_follows_record_rules_and_read_permissions(site):
    app, client, headers = site
    rep = client.get("/api/v1/search/?q=acme", headers=headers["rep"])
    assert titles(rep, "deal") == ["Acme rollout"]
    assert titles(rep, "contact") == ["Ada Acme"]
    admin = client.get("/api/v1/search/?q=ACME", headers=headers["admin"])
    assert titles(admin, "deal") == ["Acme renewal", "Acme rollout"]
    assert titles(admin, "contact") == ["Ada Acme", "Bob Acme"]
    # a viewer may read contacts but not deals: no deal group at all
    viewer = client.get("/api/v1/search/?q=acme", headers=headers["viewer"])
    assert titles(viewer, "deal") == [] and titles(viewer, "contact") == ["Ada Acme", "Bob Acme"]
    url = {g["model"]: g for g in rep.get_json()["result"]}["deal"]["results"][0]["url"]
    assert client.get(url, headers=headers["rep"]).status_code in (200, 302)


def test_like_wildcards_in_the_query_are_literal(site):
    app, client, headers = site
    response = client.get("/api/v1/search/?q=0%25", headers=headers["admin"])  # "0%"
    assert titles(response, "contact") == ["Per Cent 100%"]
    response = client.get("/api/v1/search/?q=_c", headers=headers["admin"])
    assert response.get_json()["result"] == []


def test_bad_queries_get_a_field_error(site):
    app, client, headers = site
    for q in ("", "a", "x" * 101):
        response = client.get(f"/api/v1/search/?q={q}", headers=headers["rep"])
        assert response.status_code == 400
        assert list(response.get_json()["message"]) == ["q"]


def test_disabled_plugins_are_not_searched(site):
    app, client, headers = site
    assert client.post("/api/v1/plugins/sales/disable",
                       headers=headers["admin"]).status_code == 200
    response = client.get("/api/v1/search/?q=acme", headers=headers["admin"])
    assert titles(response, "deal") == [] and titles(response, "contact") == ["Ada Acme",
                                                                              "Bob Acme"]


def test_search_page_lists_links(site, web_login):
    app, client, headers = site
    browser = app.test_client()
    web_login(browser, "rep", "pw-123456")
    assert 'id="trellis-search"' in browser.get("/dealview/list/").get_data(as_text=True)
    page = browser.get("/search/?q=acme").get_data(as_text=True)
    assert "Acme rollout" in page and "Acme renewal" not in page and "Ada Acme" in page
    assert "Type at least 2 characters." in browser.get("/search/?q=a").get_data(as_text=True)
    anonymous = app.test_client().get("/search/?q=acme")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_results_are_ranked_exact_then_prefix_then_contains(site):
    app, client, headers = site
    with app.app_context():
        db.session.add_all([Contact(first_name="Mac", last_name="Zed"),
                            Contact(first_name="Jo", last_name="Macdonald"),
                            Contact(first_name="Al", last_name="Tomac")])
        db.session.commit()
    response = client.get("/api/v1/search/?q=mac", headers=headers["admin"])
    groups = {g["model"]: g for g in response.get_json()["result"]}
    results = groups["contact"]["results"]
    assert [(r["title"], r["score"]) for r in results] == [
        ("Mac Zed", 3), ("Jo Macdonald", 2), ("Al Tomac", 1)]
    # the group with the best match comes first
    rollout = client.get("/api/v1/search/?q=acme rollout", headers=headers["admin"])
    assert rollout.get_json()["result"][0]["model"] == "deal"
