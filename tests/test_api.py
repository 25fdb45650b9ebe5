"""The core REST API: authentication, permissions, validation, audit and large lists."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from trellis.db import db
from trellis.models import Contact
from trellis.testing import csrf_token


@pytest.fixture
def app(trellis_app_factory):
    return trellis_app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin(client, api_login):
    return api_login(client)


def test_unauthenticated_calls_get_401(client):
    for method, url in [("get", "/api/v1/contact/"), ("post", "/api/v1/contact/"),
                        ("get", "/api/v1/plugins/"), ("put", "/api/v1/settings/core"),
                        ("get", "/api/v1/audit/")]:
        response = getattr(client, method)(url, json={})
        assert response.status_code == 401, (method, url, response.status_code)


def test_only_login_and_health_are_public(app, client):
    """Every API route answers 401 anonymously, except the declared public ones."""
    public = {"/api/v1/security/login", "/api/v1/security/refresh", "/api/v1/_openapi",
              "/api/v1/openapi/v1/_openapi", "/api/v1/menu/"}
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule in public or rule.arguments - {"pk"}:
            continue
        url = rule.rule.replace("<int:pk>", "1").replace("<pk>", "1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, json={})
            assert response.status_code == 401, (method, url, response.status_code)
            checked += 1
    assert checked > 20


def test_a_user_without_the_permission_gets_403(app, client, api_login, make_user):
    make_user(app, "viewer", ["CRM Viewer"])
    headers = api_login(client, "viewer", "pw-123456")
    assert client.get("/api/v1/contact/", headers=headers).status_code == 200
    response = client.post("/api/v1/contact/", headers=headers,
                           json={"first_name": "A", "last_name": "B"})
    assert response.status_code == 403
    assert client.get("/api/v1/plugins/", headers=headers).status_code == 403
    assert client.get("/api/v1/audit/", headers=headers).status_code == 403


def test_invalid_input_gets_400_with_field_errors_and_nothing_stored(app, client, admin):
    response = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "", "email": "not-an-email", "last_name": "x" * 101})
    assert response.status_code == 400
    errors = response.get_json()["message"]
    assert errors["first_name"] == ["Must not be empty."]
    assert errors["last_name"] == ["Longer than maximum length 100."]
    assert errors["email"] == ["Not a valid e-mail address."]
    response = client.post("/api/v1/contact/", headers=admin, json={"first_name": "Ann"})
    assert response.status_code == 400
    assert response.get_json()["message"] == {"last_name": ["Missing data for required field."]}
    response = client.post("/api/v1/account/", headers=admin, json={
        "name": "Acme", "country": "Germany", "domain": "not a domain"})
    assert response.status_code == 400
    assert response.get_json()["message"] == {
        "country": ["Longer than maximum length 2.", "Use a two-letter ISO country code, e.g. DE."],
        "domain": ["Not a valid domain, e.g. acme.com."]}
    with app.app_context():
        assert db.session.scalars(select(Contact)).all() == []


def test_a_reference_to_a_missing_record_is_a_field_error(app, client, admin):
    response = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "Ann", "last_name": "Lee", "account_id": 99999, "owner_id": 4242})
    assert response.status_code == 400
    assert response.get_json()["message"] == {"account_id": ["No account with id 99999."],
                                              "owner_id": ["No user with id 4242."]}
    account = client.post("/api/v1/account/", headers=admin, json={"name": "Acme"})
    ok = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "Ann", "last_name": "Lee", "account_id": account.get_json()["id"]})
    assert ok.status_code == 201
    response = client.put(f"/api/v1/contact/{ok.get_json()['id']}", headers=admin,
                          json={"account_id": 123456})
    assert response.status_code == 400
    assert response.get_json()["message"] == {"account_id": ["No account with id 123456."]}


def test_deleting_an_account_cascades_to_its_timeline_on_sqlite_too(app, client, admin):
    account = client.post("/api/v1/account/", headers=admin, json={"name": "Gone"}).get_json()
    client.post("/api/v1/activity/", headers=admin,
                json={"type": "call", "subject": "hi", "account_id": account["id"]})
    assert client.delete(f"/api/v1/account/{account['id']}", headers=admin).status_code == 200
    assert client.get("/api/v1/activity/", headers=admin).get_json()["count"] == 0


def test_settings_api_validates_each_field(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["sales"])
    client = app.test_client()
    headers = api_login(client)
    response = client.put("/api/v1/settings/sales", headers=headers,
                          json={"company_currency": "euro", "stale_deal_days": 0})
    assert response.status_code == 400
    assert response.get_json()["message"] == {
        "company_currency": ["Use an ISO 4217 code, e.g. EUR."],
        "stale_deal_days": ["Must be greater than or equal to 1 and less than or equal to 365."]}
    assert client.get("/api/v1/settings/sales", headers=headers).get_json()["result"][
        "stale_deal_days"] == 14
    response = client.put("/api/v1/settings/sales", headers=headers, json={"stale_deal_days": 30})
    assert response.status_code == 200
    assert response.get_json()["result"] == {
        "company_currency": "EUR", "stale_deal_days": 30, "lead_response_hours": 4,
        "lead_response_warn_minutes": 60, "create_order_on_won": True}
    assert client.put("/api/v1/settings/sales", headers=headers, data="[1]",
                      content_type="application/json").status_code == 400


def test_create_update_delete_are_audited_with_who_and_what(app, client, admin):
    created = client.post("/api/v1/contact/", headers=admin,
                          json={"first_name": "Grace", "last_name": "Hopper",
                                "email": "grace@navy.example"})
    assert created.status_code == 201, created.get_json()
    pk = created.get_json()["id"]
    assert client.put(f"/api/v1/contact/{pk}", headers=admin,
                      json={"email": "grace@cobol.example"}).status_code == 200
    assert client.delete(f"/api/v1/contact/{pk}", headers=admin).status_code == 200
    history = client.get(
        f"/api/v1/audit/?q=(filters:!((col:model,opr:eq,value:contact),"
        f"(col:record_id,opr:eq,value:'{pk}')),order_column:id,order_direction:asc)",
        headers=admin).get_json()["result"]
    assert [h["action"] for h in history] == ["created", "updated", "deleted"]
    assert {h["username"] for h in history} == {"admin"}
    assert {h["source"] for h in history} == {"api"}
    assert history[0]["changes"]["email"] == {"old": None, "new": "grace@navy.example"}
    assert history[1]["changes"] == {
        "email": {"old": "grace@navy.example", "new": "grace@cobol.example"}}
    assert history[2]["changes"]["last_name"] == {"old": "Hopper", "new": None}


def test_audit_history_page_per_record(app, client, web_login):
    with app.app_context():
        db.session.add(Contact(first_name="Ada", last_name="Lovelace"))
        db.session.commit()
    web_login(client)
    show = client.get("/contactview/show/1").get_data(as_text=True)
    assert 'href="/auditview/record/contact/1"' in show
    page = client.get("/auditview/record/contact/1")
    assert page.status_code == 200
    assert b"Lovelace" in page.data and b"created" in page.data


def test_list_counts_are_capped_on_large_tables(trellis_app_factory, api_login):
    app = trellis_app_factory(config={"TRELLIS_COUNT_CAP": 50})
    with app.app_context():
        db.session.execute(insert(Contact), [
            {"first_name": f"P{i}", "last_name": "Many" if i % 2 else "Few"}
            for i in range(120)])
        db.session.commit()
    client = app.test_client()
    headers = api_login(client)
    body = client.get("/api/v1/contact/?q=(page_size:10)", headers=headers).get_json()
    assert body["count"] == 50 and body["count_capped"] is True
    assert len(body["result"]) == 10
    late = client.get("/api/v1/contact/?q=(page:11,page_size:10)", headers=headers).get_json()
    assert [r["first_name"] for r in late["result"]] == [f"P{i}" for i in range(110, 120)]
    few = client.get("/api/v1/contact/?q=(filters:!((col:first_name,opr:sw,value:P1)))",
                     headers=headers).get_json()
    assert few["count"] == 31 and few["count_capped"] is False


def test_personal_api_keys_work_and_an_admin_can_revoke_them(app, client, api_login, make_user,
                                                            web_login):
    make_user(app, "rep", ["CRM User"])
    rep = api_login(client, "rep", "pw-123456")
    created = client.post("/api/v1/security/api_keys/", headers=rep, json={"name": "laptop"})
    assert created.status_code == 201, created.get_json()
    key = created.get_json()["result"]["key"]
    assert key.startswith("trl_")
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/contact/", headers=bearer).status_code == 200
    assert client.get("/api/v1/plugins/", headers=bearer).status_code == 403
    with app.app_context():
        from flask_appbuilder.security.sqla.models import ApiKey

        stored = db.session.scalars(select(ApiKey)).one()
        assert key not in (stored.key_hash, stored.lookup_hash)  # only hashes at rest
    # the admin revokes it from Admin > API keys
    web_login(client)
    token = csrf_token(client.get("/apikeyadminview/list/").get_data(as_text=True))
    response = client.post("/apikeyadminview/action_post", data={
        "action": "revoke", "rowid": [str(stored.id)], "csrf_token": token})
    assert response.status_code == 302
    assert client.get("/api/v1/contact/", headers=bearer).status_code == 401


def test_login_is_rate_limited(trellis_app_factory):
    app = trellis_app_factory(config={"AUTH_RATE_LIMIT": "3 per minute"})
    client = app.test_client()
    codes = [client.post("/api/v1/security/login", json={
        "username": "admin", "password": "wrong", "provider": "db"}).status_code
        for _ in range(5)]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]


def test_session_cookie_is_httponly_and_samesite(client, web_login):
    response = web_login(client)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_forms_reject_a_missing_csrf_token(trellis_app_factory, web_login):
    app = trellis_app_factory(plugins=["sales"])
    client = app.test_client()
    web_login(client)
    response = client.post("/plugins/sales/disable", data={})
    assert response.status_code == 400
    assert b"The CSRF token is missing." in response.data
    ext = app.extensions["trellis"]
    with app.app_context():
        assert ext.is_enabled("sales", fresh=True)
    token = csrf_token(client.get("/plugins/").get_data(as_text=True))
    client.post("/plugins/sales/disable", data={"csrf_token": token})
    with app.app_context():
        assert not ext.is_enabled("sales", fresh=True)


def test_openapi_document_lists_core_apis(client, admin):
    spec = client.get("/api/v1/_openapi", headers=admin).get_json()
    for path in ["/contact/", "/account/", "/plugins/", "/settings/{plugin}", "/audit/",
                 "/security/api_keys/"]:
        assert f"/api/v1{path}" in spec["paths"], path


def test_health_check_is_public(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_permission_checks_are_cached_for_the_configured_ttl(trellis_app_factory, api_login,
                                                             make_user):
    import time

    app = trellis_app_factory(config={"TRELLIS_PERMISSION_CACHE_TTL": 1.0})
    make_user(app, "viewer", ["CRM Viewer"])
    client = app.test_client()
    headers = api_login(client, "viewer", "pw-123456")
    assert client.get("/api/v1/contact/", headers=headers).status_code == 200
    with app.app_context():  # revoke it as another process would: straight in the database
        sm = app.appbuilder.sm
        role = sm.find_role("CRM Viewer")
        pv = sm.find_permission_view_menu("can_read", "core.Contact")
        role.permissions.remove(pv)
        db.session.commit()
    assert client.get("/api/v1/contact/", headers=headers).status_code == 200  # cached
    time.sleep(1.1)
    assert client.get("/api/v1/contact/", headers=headers).status_code == 403


def test_fab_rison_validators_are_built_once():
    """fastpaths swaps FAB's jsonschema module attribute; fail loudly if FAB moves it."""
    import flask_appbuilder.api as fab_api

    from trellis.fastpaths import _CachedJsonschema, cache_rison_validators

    import inspect

    # FAB's @rison must still validate through the module attribute we replace
    assert "jsonschema.validate(" in inspect.getsource(fab_api.rison)
    cache_rison_validators()
    assert isinstance(fab_api.jsonschema, _CachedJsonschema)
    schema = {"type": "object", "properties": {"page": {"type": "integer"}}}
    fab_api.jsonschema.validate({"page": 1}, schema)
    with pytest.raises(fab_api.jsonschema.ValidationError):
        fab_api.jsonschema.validate({"page": "x"}, schema)
    assert len(fab_api.jsonschema._validators) >= 1


def test_lists_have_a_stable_order_and_can_be_paged_by_key(app, client, admin):
    with app.app_context():
        db.session.execute(insert(Contact), [
            {"first_name": f"K{i}", "last_name": "Key"} for i in range(30)])
        db.session.commit()
    first = client.get("/api/v1/contact/?q=(page_size:10)", headers=admin).get_json()["ids"]
    assert first == sorted(first) and len(first) == 10
    after = client.get(f"/api/v1/contact/?q=(filters:!((col:id,opr:gt,value:{first[-1]})),"
                       "page_size:10)", headers=admin).get_json()["ids"]
    assert after == list(range(first[-1] + 1, first[-1] + 11))


def test_a_value_that_must_be_unique_answers_400_naming_the_field(client, admin):
    first = client.post("/api/v1/tag/", headers=admin, json={"name": "VIP"})
    assert first.status_code == 201
    again = client.post("/api/v1/tag/", headers=admin, json={"name": "VIP"})
    assert again.status_code == 400
    assert again.get_json()["message"] == {"name": ["Another record already has 'VIP'."]}
    tag = first.get_json()["id"]
    keep = client.put(f"/api/v1/tag/{tag}", headers=admin, json={"name": "VIP", "color": "red"})
    assert keep.status_code == 200  # a record may keep its own value


def test_ids_beyond_the_database_range_and_unknown_api_urls_answer_json_404(client, admin):
    huge = 2**63
    for method in ("get", "put", "delete"):
        response = getattr(client, method)(f"/api/v1/tag/{huge}", headers=admin, json={})
        assert response.status_code == 404, method
    bad_ref = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "A", "last_name": "B", "account_id": huge})
    assert bad_ref.status_code == 400 and "account_id" in bad_ref.get_json()["message"]
    nowhere = client.get("/api/v1/no/such/thing", headers=admin)
    assert nowhere.status_code == 404 and nowhere.get_json() == {"message": "Not found"}
