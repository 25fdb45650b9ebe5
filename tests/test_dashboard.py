"""The dashboard page and API: widgets of enabled plugins the user may read."""

from __future__ import annotations

from trellis import hookimpl
from trellis.specs import Manifest, WidgetSpec


class Widgets:
    """A throwaway plugin offering one widget of each kind."""

    @hookimpl
    def trellis_manifest(self) -> Manifest:
        return Manifest(label="Widgets (tests)")

    @hookimpl
    def trellis_dashboard_widgets(self) -> list[WidgetSpec]:
        def broken():
            raise RuntimeError("boom")

        return [
            WidgetSpec("answer", "The answer", lambda: {"value": "42", "unit": "units",
                                                        "note": "for everyone"}),
            WidgetSpec("table", "A table", lambda: {"columns": ["Who", "What"],
                                                    "rows": [["ann", "7.00"]]}, kind="table"),
            WidgetSpec("bars", "Some bars", lambda: {
                "bars": [{"label": "big", "value": 10, "display": "10"},
                         {"label": "half", "value": 5, "display": "5"}],
                "unconverted": [{"currency": "USD", "amount": "3.00"}]}, kind="bars"),
            WidgetSpec("secret", "Audit only", lambda: {"value": "s3cret"},
                       permission=("can_read", "core.Audit")),
            WidgetSpec("broken", "Broken", broken),
        ]


def test_dashboard_api_and_page(trellis_app_factory, api_login, web_login, make_user):
    app = trellis_app_factory(extra_plugins=[("widgets", Widgets())])
    make_user(app, "user", ["CRM User"])
    client = app.test_client()

    admin = client.get("/api/v1/dashboard/", headers=api_login(client)).get_json()["result"]
    assert [w["name"] for w in admin] == ["widgets.answer", "widgets.table", "widgets.bars",
                                          "widgets.secret", "widgets.broken"]
    assert admin[0] == {"name": "widgets.answer", "plugin": "widgets", "label": "The answer",
                        "kind": "kpi", "data": {"value": "42", "unit": "units",
                                                "note": "for everyone"}}
    assert admin[4]["data"] is None and admin[4]["error"] == "This widget could not be computed."

    user = client.get("/api/v1/dashboard/", headers=api_login(client, "user", "pw-123456"))
    assert [w["name"] for w in user.get_json()["result"]] == [
        "widgets.answer", "widgets.table", "widgets.bars", "widgets.broken"]
    assert client.get("/api/v1/dashboard/").status_code == 401

    web_login(client, "user", "pw-123456")
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "The answer" in html and "42" in html and "for everyone" in html
    assert "<td>ann</td>" in html
    assert "width: 100.0%" in html and "width: 50.0%" in html
    assert "Not converted (no exchange rate):" in html and "3.00 USD" in html
    assert "s3cret" not in html and "This widget could not be computed." in html
    assert 'href="/dashboard/"' in client.get("/").get_data(as_text=True)  # menu + home


def test_widgets_of_a_disabled_plugin_are_not_offered(trellis_app_factory, api_login,
                                                     web_login):
    app = trellis_app_factory(extra_plugins=[("widgets", Widgets())], enable=[])
    client = app.test_client()
    assert client.get("/api/v1/dashboard/", headers=api_login(client)).get_json() == {
        "result": []}
    assert app.test_client().get("/dashboard/").status_code == 302  # to the login page
    web_login(client)
    assert "No widgets to show" in client.get("/dashboard/").get_data(as_text=True)
