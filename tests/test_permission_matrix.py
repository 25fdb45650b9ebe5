"""The permission matrix: every page and REST endpoint of the core and of every
plugin — found from the app's URL map, not listed by hand — against every
built-in role and anonymous.

What each role *should* get comes from what the code declares, never from the
request itself: the permission a view's method is decorated with (FAB's
``has_access``/``protect``, with the view's ``method_permission_name``), or a
plain blueprint's ``BlueprintSpec.permission``, looked up in the role's
permissions as stored.  A role that has it must get through (any answer but
401/403 or a redirect to the login page — a 404 for a record it may not see is
fine); a role that lacks it must be refused (403, or FAB's redirect to the
login page).  Anonymous is refused everywhere except the declared public
endpoints.  An endpoint that declares no permission and is not declared public
fails the test: nothing is reachable by accident.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask_appbuilder.api import BaseApi
from flask_appbuilder.baseviews import AbstractViewApi
from flask_appbuilder.const import PERMISSION_PREFIX

from tests.conftest import ALL_PLUGINS

PW = "pw-matrix-123"

#: FAB's own endpoints that need no login, by view class and method.
PUBLIC_FAB = {
    ("IndexView", "index"), ("HomeView", "index"), ("UtilView", "back"),
    ("LocaleView", "index"),
    ("TrellisAuthDBView", "login"), ("TrellisAuthDBView", "logout"),
    ("TrellisAuthDBView", "totp"),  # the second step of a login: its own checks
    ("SecurityApi", "login"), ("SecurityApi", "refresh"),
}
#: Trellis's own endpoints outside FAB views that are public on purpose.
PUBLIC_CORE = {"health.health", "health.ready", "static", "appbuilder.static"}


def _view_and_method(app: Any, endpoint: str) -> tuple[Any, str] | None:
    func = app.view_functions[endpoint]
    view = getattr(func, "__self__", None)
    if isinstance(view, AbstractViewApi):
        return view, func.__name__
    return None


def required(app: Any, endpoint: str) -> tuple[str, str] | None | str:
    """``(permission, view menu)`` the endpoint demands; ``None`` if declared public;
    ``"undeclared"`` if it demands nothing and is not declared public."""
    ext = app.extensions["trellis"]
    found = _view_and_method(app, endpoint)
    if found is not None:
        view, method = found
        if method == "action":
            # FAB's one-record action route: refused on GET (a mutation; CSRF is on),
            # on POST it checks the named action's own permission (test_record_rules)
            return ("(a GET mutation)", "refused to everyone")
        func = getattr(type(view), method)
        name = getattr(func, "_permission_name", None)
        if name is None:
            return None if (type(view).__name__, method) in PUBLIC_FAB else "undeclared"
        permission = name if name.startswith(PERMISSION_PREFIX) else PERMISSION_PREFIX + name
        mapped = (view.method_permission_name or {}).get(method)
        if mapped:
            permission = PERMISSION_PREFIX + mapped
        if permission not in view.base_permissions:
            return (permission, "(not offered by the view)")
        return permission, view.class_permission_name
    blueprint = endpoint.rsplit(".", 1)[0] if "." in endpoint else ""
    owner = ext.blueprint_owner.get(blueprint)
    if owner is not None and owner[1] is not None:
        plugin, spec = owner
        return None if spec.public else (spec.permission, f"{plugin}.{spec.blueprint.name}")
    if endpoint in PUBLIC_CORE or endpoint.endswith(".static"):
        return None
    return "undeclared"


def url_for_rule(rule: Any, record_id: int = 1) -> str:
    values = {}
    for arg in rule.arguments:
        kind = type(rule._converters[arg]).__name__
        values[arg] = record_id if "Int" in kind else "x"
    return rule.build(values, append_unknown=False)[1]


@pytest.fixture(scope="module")
def matrix_app(tmp_path_factory):
    from trellis.testing import build_app, dispose

    app = build_app(tmp_path_factory.mktemp("matrix"), plugins=ALL_PLUGINS)
    with app.app_context():
        from trellis.demo import load_demo

        load_demo(contacts=10, users_password=PW)
    yield app
    dispose(app)


def roles_and_users(app: Any) -> dict[str, tuple[str, set[tuple[str, str]]]]:
    """Each built-in role (declared by the core and the plugins, plus Admin): a user
    holding only it, and the role's stored permissions."""
    ext = app.extensions["trellis"]
    sm = app.appbuilder.sm
    names = {"Admin", *(spec.name for _, spec in ext.roles)}
    out = {}
    with app.app_context():
        for name in sorted(names):
            role = sm.find_role(name)
            assert role is not None, name
            username = "m-" + "".join(c if c.isalnum() else "-" for c in name.lower())
            if sm.find_user(username=username) is None:
                sm.add_user(username, name, "Matrix", f"{username}@example.com", role, PW)
            perms = {(p.permission.name, p.view_menu.name) for p in role.permissions}
            out[name] = (username, perms)
    return out


def refused(response: Any, endpoint: str = "") -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code in (301, 302, 303):
        if endpoint.endswith(".action"):  # FAB refuses with a redirect back, and a flash
            return True
        return urlsplit(response.headers.get("Location", "")).path.startswith("/login")
    return False


#: Writes go to a record that does not exist: a granted role gets 404 (or 400 for a
#: bad body), a refused one 401/403 — permission is checked first; nothing changes.
MISSING = 2_000_000_000


def get_routes(app: Any) -> list[tuple[str, str]]:
    """``(endpoint, url)`` of every GET route."""
    return sorted({(rule.endpoint, url_for_rule(rule)) for rule in app.url_map.iter_rules()
                   if "GET" in rule.methods})


def write_routes(app: Any) -> list[tuple[str, str, str]]:
    """``(endpoint, method, url)`` of every REST write (POST, PUT, PATCH, DELETE)."""
    return sorted({(rule.endpoint, method, url_for_rule(rule, MISSING))
                   for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
                   for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}})


def all_routes(app: Any) -> list[tuple[str, str, str]]:
    """Every GET route and every REST write: ``(endpoint, method, url)``."""
    return [(e, "GET", u) for e, u in get_routes(app)] + [
        w for w in write_routes(app) if w[0] not in ("SecurityApi.login", "SecurityApi.refresh",
                                                      "TrellisSecurityApi.login",
                                                      "TrellisSecurityApi.refresh")]


def call(client: Any, method: str, url: str, headers: dict[str, str] | None = None) -> Any:
    return client.open(url, method=method, json={} if method != "GET" else None,
                       headers=headers if url.startswith("/api/") else {})


def test_every_endpoint_declares_a_permission_or_is_declared_public(matrix_app):
    undeclared = [(endpoint, method) for endpoint, method, _ in all_routes(matrix_app)
                  if required(matrix_app, endpoint) == "undeclared"]
    assert not undeclared, undeclared
    # and the check sees FAB views, REST APIs and plain blueprints alike
    kinds = Counter(
        "api" if isinstance((_view_and_method(matrix_app, e) or (None,))[0], BaseApi)
        else "view" if _view_and_method(matrix_app, e) else "blueprint"
        for e, _ in get_routes(matrix_app))
    assert kinds["api"] > 50 and kinds["view"] > 50 and kinds["blueprint"] >= 3, kinds


def test_anonymous_is_refused_everywhere_but_the_public_endpoints(matrix_app):
    client = matrix_app.test_client()
    wrong = []
    for endpoint, method, url in all_routes(matrix_app):
        if required(matrix_app, endpoint) is None:
            continue
        response = call(client, method, url)
        if not refused(response, endpoint):
            wrong.append((method, url, response.status_code))
    assert not wrong, wrong


def test_each_built_in_role_gets_exactly_what_it_is_granted(matrix_app, api_login):
    routes = [(e, m, u, required(matrix_app, e)) for e, m, u in all_routes(matrix_app)]
    routes = [(e, m, u, need) for e, m, u, need in routes if need is not None]
    checked: Counter[str] = Counter()
    wrong = []
    # a granted route renders its page: once, for the first role granted it, is
    # enough to see the grant honoured; every role is refused what it lacks
    served: set[tuple[str, str]] = set()
    for role, (username, perms) in roles_and_users(matrix_app).items():
        client = matrix_app.test_client()
        headers = api_login(client, username, PW)
        with client.session_transaction() as session:  # a web session too
            session.clear()
        from trellis.testing import csrf_token

        token = csrf_token(client.get("/login/").get_data(as_text=True))
        client.post("/login/", data={"username": username, "password": PW,
                                     "csrf_token": token})
        for endpoint, method, url, need in routes:
            granted = need in perms
            if granted and (method, url) in served:
                continue
            if granted:
                served.add((method, url))
            response = call(client, method, url, headers)
            if response.status_code >= 500:
                wrong.append((role, method, url, response.status_code, "server error"))
            elif granted == refused(response, endpoint):
                wrong.append((role, method, url, response.status_code,
                              f"{'granted' if granted else 'not granted'} {need}"))
            checked["granted" if granted else "refused"] += 1
    assert not wrong, "\n".join(map(str, wrong[:60])) + f"\n… {len(wrong)} in all"
    assert checked["granted"] > 300 and checked["refused"] > 300, checked
