"""Every page of the core and the plugins renders (found from the app, not listed),
and each keeps to the Content-Security-Policy: inline scripts carry the request's
nonce, no inline event handlers, no ``javascript:`` URLs, nothing from another host."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from flask_appbuilder import ModelView
from flask_appbuilder.api import BaseApi

from tests.conftest import ALL_PLUGINS


class _Scripts(HTMLParser):
    """What the policy cares about in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.inline_nonces: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler <{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction") and value and \
                    value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in <{tag} {name}>")
            if name in ("src", "href") and value and tag in ("script", "link", "img", "iframe") \
                    and urlsplit(value).hostname not in (None, "localhost"):
                self.problems.append(f"asset from another host: <{tag} {name}={value}>")
        if tag == "script" and not a.get("src") and a.get("type") != "application/json":
            self.inline_nonces.append(a.get("nonce"))


def assert_keeps_to_the_policy(url: str, response) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    assert "object-src 'none'" in policy and "frame-ancestors 'self'" in policy, (url, policy)
    nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", policy)
    assert nonce, (url, policy)
    page = _Scripts()
    page.feed(response.get_data(as_text=True))
    assert not page.problems, (url, page.problems)
    assert all(n == nonce.group(1) for n in page.inline_nonces), (url, page.inline_nonces)


def test_every_registered_page_renders_for_an_admin(trellis_app_factory, web_login):
    app = trellis_app_factory(plugins=ALL_PLUGINS + ["callnotes"])
    with app.app_context():
        from trellis.demo import load_demo

        load_demo(contacts=20)
    client = app.test_client()
    web_login(client)
    owned = set(app.extensions["trellis"].blueprint_owner)
    checked = []
    for view in app.appbuilder.baseviews:
        if view.blueprint.name not in owned or isinstance(view, BaseApi):
            continue
        urls = [view.route_base + "/"]
        if isinstance(view, ModelView):
            urls = [f"{view.route_base}/list/"]
            routes = view.include_route_methods
            if "can_write" in view.base_permissions and (routes is None or "add" in routes):
                urls.append(f"{view.route_base}/add")
            with app.app_context():
                first = view.datamodel.query(page=0, page_size=1)[1]
                if first:
                    pk = view.datamodel.get_pk_value(first[0])
                    urls.append(f"{view.route_base}/show/{pk}")
                    if "can_write" in view.base_permissions and (routes is None
                                                                 or "edit" in routes):
                        urls.append(f"{view.route_base}/edit/{pk}")
            # every column of the list sorted: the offered sort links work, and a
            # hand-made sort by anything else (a Python property) is ignored
            urls += [f"{view.route_base}/list/?_oc_{type(view).__name__}={column}"
                     f"&_od_{type(view).__name__}=desc" for column in view.list_columns]
        for url in urls:
            response = client.get(url)
            assert response.status_code in (200, 302), (url, response.status_code)
            if response.status_code == 200:
                assert b"Traceback" not in response.data
                assert_keeps_to_the_policy(url, response)
            checked.append(url)
    assert len(checked) > 40
    for url, who in (("/", client), ("/swagger/v1", client), ("/login/", app.test_client())):
        response = who.get(url)
        assert response.status_code == 200, url
        assert_keeps_to_the_policy(url, response)


def test_the_favicon_is_served_to_anyone(trellis_app_factory):
    """Browsers ask every site for /favicon.ico: a 404 there is a console error on
    every first page (the browser tests fail on console errors)."""
    answer = trellis_app_factory(plugins=[]).test_client().get("/favicon.ico")
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    assert answer.data.lstrip().startswith(b"<svg")
