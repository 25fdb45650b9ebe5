"""Malicious input, wherever it comes from: markup stored in every text column of
every model is shown escaped on every page; SQL-like strings in search and list
filters are plain text; oversized bodies are refused before anything is stored.

(Template injection in e-mail templates: tests/test_templating_signing_mail.py;
CSV formula injection: plugins/integrations/tests/test_list_export.py and
tests/test_reportbuilder.py; webhooks to internal hosts:
plugins/integrations/tests/test_netguard.py.)
"""

from __future__ import annotations

import prison as rison
from flask_appbuilder import ModelView
from flask_appbuilder.api import BaseApi
from sqlalchemy import Enum, String, Text, cast, func, literal, select, update

from trellis.db import db
from trellis.models import Contact

from tests.conftest import ALL_PLUGINS

#: Breaks out of an attribute and opens an element with a handler: if it ever
#: reaches a page unescaped, the page runs it.
PAYLOAD = '"><svg/onload=alert(1)>'
RAW = "<svg/onload=alert(1)>"


def _text_columns(model: type) -> list[str]:
    """Plain text columns that can hold the payload (not keys, enums or encrypted)."""
    out = []
    for column in model.__table__.columns:
        kind = column.type
        if type(kind) not in (String, Text) or isinstance(kind, Enum):
            continue
        if column.primary_key or column.foreign_keys or column.unique:
            continue
        if getattr(kind, "length", None) is not None and kind.length < len(PAYLOAD) + 10:
            continue
        out.append(column.name)
    return out


def test_markup_in_every_text_field_is_escaped_on_every_page(trellis_app_factory, web_login):
    app = trellis_app_factory(plugins=ALL_PLUGINS)
    poisoned: dict[str, list[str]] = {}
    with app.app_context():
        from trellis.demo import load_demo

        load_demo(contacts=15)
        registry = app.extensions["trellis"].registry
        for spec in registry:
            columns = _text_columns(spec.model)
            if columns and db.session.scalar(select(func.count()).select_from(spec.model)):
                # behind the application's back: whatever got stored, output must escape it
                table = spec.model.__table__
                key = list(table.primary_key.columns)[0]
                unique = literal(PAYLOAD) + cast(key, String(10))  # for unique groups
                db.session.execute(update(table).values({c: unique for c in columns}))
                poisoned[spec.name] = columns
        db.session.commit()
        contact_id = db.session.scalar(select(func.min(Contact.id)))
    assert {"contact", "account", "activity", "lead", "deal"} <= set(poisoned)

    client = app.test_client()
    web_login(client)
    owned = set(app.extensions["trellis"].blueprint_owner)
    pages = ["/", "/dashboard/", f"/search/?q={PAYLOAD[:8]}", "/reports/",
             f"/customer/contact/{contact_id}"]
    for view in app.appbuilder.baseviews:
        if view.blueprint.name not in owned or isinstance(view, BaseApi):
            continue
        if isinstance(view, ModelView):
            pages.append(f"{view.route_base}/list/")
            with app.app_context():
                first = view.datamodel.query(page=0, page_size=1)[1]
                if first:
                    pk = view.datamodel.get_pk_value(first[0])
                    pages.append(f"{view.route_base}/show/{pk}")
                    routes = view.include_route_methods
                    if "can_write" in view.base_permissions and (routes is None
                                                                 or "edit" in routes):
                        pages.append(f"{view.route_base}/edit/{pk}")
        else:
            pages.append(view.route_base + "/")
    shown = 0
    for url in pages:
        response = client.get(url, follow_redirects=True)
        assert response.status_code in (200, 404), (url, response.status_code)
        html = response.get_data(as_text=True)
        assert RAW not in html, f"unescaped markup on {url}"
        shown += "svg/onload=alert(1)" in html  # the text is there, as text
    assert shown > 40, shown


def test_sql_like_strings_in_search_and_filters_are_plain_text(trellis_app_factory,
                                                              api_login, web_login):
    app = trellis_app_factory()
    tricky = ["' OR 1=1 --", "%' OR '1'='1", "x'); DROP TABLE contact; --", "_%", "\\"]
    with app.app_context():
        db.session.add_all([Contact(first_name="Plain", last_name="Person"),
                            Contact(first_name="Odd", last_name=tricky[0])])
        db.session.commit()
    client = app.test_client()
    headers = api_login(client)
    for value in tricky:
        query = rison.dumps({"filters": [{"col": "last_name", "opr": "ct", "value": value}]})
        answer = client.get(f"/api/v1/contact/?q={query}", headers=headers)
        assert answer.status_code == 200, (value, answer.get_json())
        names = [r["last_name"] for r in answer.get_json()["result"]]
        assert names == ([tricky[0]] if value in tricky[0] else []), (value, names)
    web_login(client)
    for value in tricky:
        page = client.get("/search/", query_string={"q": value + " x"})
        assert page.status_code == 200 and "Plain" not in page.get_data(as_text=True)
        listed = client.get("/contactview/list/", query_string={"_flt_2_last_name": value})
        assert listed.status_code == 200 and "Plain" not in listed.get_data(as_text=True)
    with app.app_context():  # and the table is still there, with both rows
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 2


def test_an_oversized_body_is_refused_and_nothing_is_stored(trellis_app_factory, api_login):
    app = trellis_app_factory(config={"MAX_CONTENT_LENGTH": 64 * 1024})
    client = app.test_client()
    headers = api_login(client)
    big = {"first_name": "Big", "last_name": "x" * (80 * 1024)}
    answer = client.post("/api/v1/contact/", json=big, headers=headers)
    assert answer.status_code == 413
    assert "larger than the limit of 65,536 bytes" in answer.get_json()["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 0
