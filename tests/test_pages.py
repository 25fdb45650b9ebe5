"""Every page of the core and the plugins renders (found from the app, not listed)."""

from __future__ import annotations

from flask_appbuilder import ModelView
from flask_appbuilder.api import BaseApi

from tests.conftest import ALL_PLUGINS


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
        for url in urls:
            response = client.get(url)
            assert response.status_code in (200, 302), (url, response.status_code)
            if response.status_code == 200:
                assert b"Traceback" not in response.data
            checked.append(url)
    assert len(checked) > 40
    assert client.get("/").status_code == 200
