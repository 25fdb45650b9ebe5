"""Dashboards: widgets of enabled plugins the user may read, a default per role,
each user's own arrangement, a per-user cache with refresh, failures isolated."""

from __future__ import annotations

import re

import pytest

from trellis import hookimpl
from trellis.specs import Manifest, WidgetSpec

PW = "pw-123456"


class Widgets:
    """A throwaway plugin offering one widget of each kind (and a broken one)."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def trellis_manifest(self) -> Manifest:
        return Manifest(label="Widgets (tests)")

    @hookimpl
    def trellis_dashboard_widgets(self) -> list[WidgetSpec]:
        def broken():
            raise RuntimeError("boom")

        def counted():
            self.calls += 1
            return {"value": str(self.calls), "number": 12, "previous": 8,
                    "previous_label": "last week"}

        return [
            WidgetSpec("answer", "The answer", lambda: {"value": "42", "unit": "units",
                                                        "note": "for everyone"}),
            WidgetSpec("table", "A table", lambda: {"columns": ["Who", "What"],
                                                    "rows": [["ann", "7.00"]]}, kind="table",
                       roles=("Team Lead",)),
            WidgetSpec("bars", "Some bars", lambda: {
                "bars": [{"label": "big", "value": 10, "display": "10"},
                         {"label": "half", "value": 5, "display": "5"}],
                "unconverted": [{"currency": "USD", "amount": "3.00"}]}, kind="bars",
                roles=("Team Lead", "CRM User")),
            WidgetSpec("series", "A series", lambda: {
                "labels": ["2024-01", "2024-02"], "x_label": "Month", "y_label": "Deals",
                "series": [{"label": "Won", "values": [1, 2]}]}, kind="series",
                roles=("Team Lead",)),
            WidgetSpec("pie", "A pie", lambda: {"slices": [{"label": "a", "value": 1}]},
                       kind="pie", roles=("Nobody",)),
            WidgetSpec("funnel", "A funnel", lambda: {"steps": [
                {"label": "Leads", "value": 10}, {"label": "Won", "value": 2}]},
                kind="funnel", roles=("Nobody",)),
            WidgetSpec("counted", "Counted", counted, roles=("Nobody",), order=1),
            WidgetSpec("secret", "Audit only", lambda: {"value": "s3cret"},
                       permission=("can_read", "core.Audit")),
            WidgetSpec("broken", "Broken", broken),
        ]


CORE = ["core.new_contacts", "core.activity_mix"]


@pytest.fixture
def site(trellis_app_factory, make_user, api_login):
    plugin = Widgets()
    app = trellis_app_factory(extra_plugins=[("widgets", plugin)])
    with app.app_context():
        sm = app.appbuilder.sm
        lead = sm.add_role("Team Lead")
        sm.add_permission_role(lead, sm.find_permission_view_menu("can_read", "core.Dashboard"))
    ids = {"user": make_user(app, "user", ["CRM User"]),
           "lead": make_user(app, "lead", ["Team Lead"]),
           "manager": make_user(app, "manager", ["Manager"])}
    client = app.test_client()
    headers = {name: api_login(client, name, PW) for name in ids}
    headers["admin"] = api_login(client)
    return app, client, headers, plugin


def names(response):
    assert response.status_code == 200, response.get_json()
    return [w["name"] for w in response.get_json()["result"]]


def test_each_role_gets_its_default_dashboard(site):
    app, client, headers, plugin = site
    every = ["widgets.counted", "widgets.answer", "widgets.table", "widgets.bars",
             "widgets.series", "widgets.pie", "widgets.funnel", "widgets.broken", *CORE]
    # widgets without roles are everyone's; the others only their roles'; by order
    assert names(client.get("/api/v1/dashboard/", headers=headers["user"])) == [
        "widgets.answer", "widgets.bars", "widgets.broken", *CORE]
    assert names(client.get("/api/v1/dashboard/", headers=headers["lead"])) == [
        "widgets.answer", "widgets.table", "widgets.bars", "widgets.series", "widgets.broken"]
    # "Manager" (the core setting dashboard_full_roles) and admins: every widget they may read
    assert names(client.get("/api/v1/dashboard/", headers=headers["manager"])) == every
    admin = names(client.get("/api/v1/dashboard/", headers=headers["admin"]))
    assert admin == ["widgets.counted", "widgets.answer", "widgets.table", "widgets.bars",
                     "widgets.series", "widgets.pie", "widgets.funnel", "widgets.secret",
                     "widgets.broken", *CORE]
    # ?all=1: everything the user may use, whatever their arrangement
    assert names(client.get("/api/v1/dashboard/?all=1", headers=headers["user"])) == every
    # the setting decides which roles get the lot
    assert client.put("/api/v1/settings/core", headers=headers["admin"],
                      json={"dashboard_full_roles": "Team Lead"}).status_code == 200
    assert names(client.get("/api/v1/dashboard/", headers=headers["lead"])) == every
    assert "widgets.pie" not in names(client.get("/api/v1/dashboard/",
                                                 headers=headers["manager"]))
    assert client.get("/api/v1/dashboard/").status_code == 401


def test_kpi_trend_and_a_failing_widget_in_isolation(site):
    app, client, headers, plugin = site
    widgets = {w["name"]: w for w in client.get(
        "/api/v1/dashboard/?all=1", headers=headers["admin"]).get_json()["result"]}
    assert widgets["widgets.answer"]["data"] == {"value": "42", "unit": "units",
                                                 "note": "for everyone"}
    assert widgets["widgets.counted"]["data"]["trend"] == {
        "direction": "up", "change": 4, "change_pct": 50.0, "good": True,
        "previous_label": "last week"}
    assert widgets["widgets.broken"]["data"] is None
    assert widgets["widgets.broken"]["error"] == "This widget could not be computed."
    assert widgets["widgets.series"]["data"]["series"] == [{"label": "Won", "values": [1, 2]}]
    one = client.get("/api/v1/dashboard/widget/widgets.broken", headers=headers["admin"])
    assert one.status_code == 200 and one.get_json()["result"]["error"]
    assert client.get("/api/v1/dashboard/widget/widgets.nope",
                      headers=headers["admin"]).status_code == 404
    assert client.get("/api/v1/dashboard/widget/widgets.secret",
                      headers=headers["user"]).status_code == 404


def test_users_arrange_their_own_dashboard_and_reset_it(site):
    app, client, headers, plugin = site
    user = headers["user"]
    layout = client.get("/api/v1/dashboard/layout", headers=user).get_json()["result"]
    assert layout["custom"] is False
    assert layout["widgets"] == ["widgets.answer", "widgets.bars", "widgets.broken", *CORE]
    assert "widgets.secret" not in [w["name"] for w in layout["available"]]

    chosen = ["widgets.pie", "widgets.answer"]
    response = client.put("/api/v1/dashboard/layout", headers=user, json={"widgets": chosen})
    assert response.status_code == 200 and response.get_json()["result"]["custom"] is True
    assert names(client.get("/api/v1/dashboard/", headers=user)) == chosen
    # another user's dashboard is untouched
    assert names(client.get("/api/v1/dashboard/", headers=headers["lead"]))[0] == "widgets.answer"
    for bad, message in ((["widgets.secret"], "Unknown widget 'widgets.secret'."),
                         (["widgets.pie", "widgets.pie"], "Each widget may appear only once."),
                         (["no.such"], "Unknown widget 'no.such'.")):
        response = client.put("/api/v1/dashboard/layout", headers=user, json={"widgets": bad})
        assert response.status_code == 400
        assert response.get_json()["message"] == {"widgets": [message]}
    response = client.put("/api/v1/dashboard/layout", headers=user, json={"widgets": "x"})
    assert response.status_code == 400 and "widgets" in response.get_json()["message"]
    assert names(client.get("/api/v1/dashboard/", headers=user)) == chosen  # unchanged
    reset = client.delete("/api/v1/dashboard/layout", headers=user)
    assert reset.status_code == 200 and reset.get_json()["result"]["custom"] is False
    assert names(client.get("/api/v1/dashboard/", headers=user))[0] == "widgets.answer"


def test_widget_data_is_cached_per_user_and_refreshed_on_demand(site):
    app, client, headers, plugin = site
    url = "/api/v1/dashboard/widget/widgets.counted"
    first = client.get(url, headers=headers["admin"]).get_json()["result"]
    assert (first["data"]["value"], first["cached"]) == ("1", False)
    again = client.get(url, headers=headers["admin"]).get_json()["result"]
    assert (again["data"]["value"], again["cached"]) == ("1", True)
    assert again["computed_at"] == first["computed_at"] and plugin.calls == 1
    # per user: the manager's first look computes for them
    manager = client.get(url, headers=headers["manager"]).get_json()["result"]
    assert (manager["data"]["value"], manager["cached"]) == ("2", False)
    fresh = client.get(url + "?refresh=1", headers=headers["admin"]).get_json()["result"]
    assert (fresh["data"]["value"], fresh["cached"]) == ("3", False)
    assert client.get(url, headers=headers["admin"]).get_json()["result"]["data"]["value"] == "3"
    board = {w["name"]: w for w in client.get("/api/v1/dashboard/?all=1&refresh=1",
                                              headers=headers["admin"]).get_json()["result"]}
    assert board["widgets.counted"]["data"]["value"] == "4"
    # failures are never cached: the next look tries again
    assert client.get("/api/v1/dashboard/widget/widgets.broken",
                      headers=headers["admin"]).get_json()["result"]["cached"] is False


@pytest.mark.redis
def test_the_cache_lives_in_redis_when_configured(trellis_app_factory, redis_url, api_login):
    plugin = Widgets()
    config = {"TRELLIS_DASHBOARD_CACHE_TTL": 30}
    app = trellis_app_factory(extra_plugins=[("widgets", plugin)], redis_url=redis_url,
                              config=config)
    client = app.test_client()
    url = "/api/v1/dashboard/widget/widgets.counted"
    assert client.get(url, headers=api_login(client)).get_json()["result"]["cached"] is False
    from redis import Redis

    prefix = app.config["TRELLIS_QUEUE_PREFIX"]
    keys = Redis.from_url(redis_url).keys(f"{prefix}dash:*")
    assert len(keys) == 1 and keys[0].decode().endswith(":widgets.counted")
    assert Redis.from_url(redis_url).ttl(keys[0]) <= 30
    assert client.get(url, headers=api_login(client)).get_json()["result"]["cached"] is True
    Redis.from_url(redis_url).delete(*keys)


def test_an_unknown_widget_kind_fails_the_plugin(trellis_app_factory):
    class Bad:
        @hookimpl
        def trellis_manifest(self):
            return Manifest(label="Bad")

        @hookimpl
        def trellis_dashboard_widgets(self):
            return [WidgetSpec("x", "X", dict, kind="gauge")]

    app = trellis_app_factory(extra_plugins=[("bad", Bad())])
    error = app.extensions["trellis"].plugins.by_name["bad"].error
    assert "kind must be one of kpi, series, bars, pie, funnel, table" in error


def test_dashboard_page_draws_charts_from_local_assets(site, web_login):
    app, client, headers, plugin = site
    browser = app.test_client()
    web_login(browser, "lead", PW)
    html = browser.get("/dashboard/").get_data(as_text=True)
    assert 'src="/static/trellis/vendor/chartjs/chart.umd.min.js"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    # charts: a canvas with the data as JSON and a readable table inside as fallback
    box = re.search(r'id="widget-widgets-series".*?</script>', html, re.S).group(0)
    assert "<canvas" in box and "<td>2024-02</td><td>2</td>" in box
    assert '"x_label": "Month"' in box
    assert "<td>ann</td>" in html and "This widget could not be computed." in html
    assert "Not converted (no exchange rate):" in html and "3.00 USD" in html
    assert "s3cret" not in html
    assert 'id="dashboard-arrange"' in html and 'data-name="widgets.pie"' in html
    fragment = browser.get("/dashboard/widget/widgets.series?refresh=1")
    assert fragment.status_code == 200 and 'id="widget-widgets-series"' in \
        fragment.get_data(as_text=True)
    assert browser.get("/dashboard/widget/widgets.secret").status_code == 404
    asset = browser.get("/static/trellis/vendor/chartjs/chart.umd.min.js")
    assert asset.status_code == 200 and b"Chart.js v4" in asset.data
    assert 'href="/dashboard/"' in browser.get("/").get_data(as_text=True)  # menu + home


def test_widgets_of_a_disabled_plugin_are_not_offered(trellis_app_factory, api_login,
                                                     web_login):
    app = trellis_app_factory(extra_plugins=[("widgets", Widgets())], enable=[])
    client = app.test_client()
    assert names(client.get("/api/v1/dashboard/?all=1", headers=api_login(client))) == CORE
    assert app.test_client().get("/dashboard/").status_code == 302  # to the login page
    web_login(client)
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "Widgets (tests)" not in html and "The answer" not in html
