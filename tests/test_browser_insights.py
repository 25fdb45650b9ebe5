"""Dashboards, the report builder and the Customer 360 page in a real browser.

With the demo data of every enabled plugin: each role's default dashboard
renders with its charts drawn (legends, axis titles) and no request leaving
127.0.0.1 and no JavaScript error (``Watch`` of tests/test_browser.py); a
contact's page shows the panel of every enabled plugin that offers one and a
timeline mixing the plugins' activities, and a disabled plugin's panel goes.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re

import pytest

from tests.test_browser import PLUGINS, browser, screenshot, serve, watched_page  # noqa: F401
from trellis.db import db
from trellis.testing import ADMIN

pytestmark = pytest.mark.browser
PW = "pw-123456"


@pytest.fixture
def demo_app(trellis_app_factory, make_user, monkeypatch, tmp_path):
    """Every installed plugin, the demo data of each, and a user per dashboard role."""
    monkeypatch.setenv("TRELLIS_INSTANCE_PATH", str(tmp_path))
    app = trellis_app_factory(plugins=PLUGINS)
    with app.app_context():
        from trellis.demo import load_demo

        load_demo(contacts=40, users_password=PW)
        ext = app.extensions["trellis"]
        roles = {"Manager", *(role for plugin, spec in ext.widgets if ext.is_enabled(plugin)
                              for role in spec.roles)}
        existing = {r.name for r in app.appbuilder.sm.get_all_roles()}
    users = {}
    for role in sorted(roles & existing):
        username = "u-" + re.sub(r"\W+", "-", role.lower())
        make_user(app, username, [role])
        users[role] = username
    return app, users


def log_in(page, base, username, password=PW):
    page.goto(f"{base}/logout/")
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert "/login" not in page.url, f"login of {username} failed"


CHART_OPTIONS = """() => Array.from(document.querySelectorAll('.tr-chart canvas')).map(c => {
  const chart = Chart.getChart(c);
  if (!chart) return {drawn: false};
  const scales = Object.values(chart.options.scales || {});
  return {drawn: true, type: chart.config.type, legend: chart.options.plugins.legend.display,
          titles: scales.map(s => s.title && s.title.display ? s.title.text : null),
          width: c.width};
})"""


def test_each_default_dashboard_renders_locally(demo_app, watched_page, api_login):
    from playwright.sync_api import expect

    app, users = demo_app
    page, watch = watched_page
    assert {"Sales Rep", "Sales Manager", "Manager"} <= set(users)
    client = app.test_client()
    with serve(app) as base:
        for role, username in users.items():
            expected = [w["name"] for w in client.get(
                "/api/v1/dashboard/", headers=api_login(client, username, PW)
            ).get_json()["result"]]
            assert expected, f"{role} has an empty default dashboard"
            log_in(page, base, username)
            response = page.goto(f"{base}/dashboard/")
            assert response is not None and response.status == 200
            boxes = page.locator(".tr-widget")
            expect(boxes).to_have_count(len(expected))
            assert [boxes.nth(i).get_attribute("data-name")
                    for i in range(len(expected))] == expected
            expect(page.locator(".tr-error")).to_have_count(0)
            charts = page.locator(".tr-chart")
            expect(page.locator(".tr-chart[data-drawn='1']")).to_have_count(charts.count())
            for chart in page.evaluate(CHART_OPTIONS):
                assert chart["drawn"] and chart["legend"] is True and chart["width"] > 0, chart
                if chart["type"] != "doughnut":
                    assert len(chart["titles"]) == 2 and all(chart["titles"]), chart
            screenshot(page, f"dashboard-{username}.png")
        # a user's own arrangement, in the browser: hide all but one, then reset
        username = users["Sales Rep"]
        log_in(page, base, username)
        page.goto(f"{base}/dashboard/")
        page.click("#dashboard-customise")
        choices = page.locator("#dashboard-choices li")
        for i in range(choices.count()):
            box = choices.nth(i).locator("input")
            if box.is_checked():
                box.uncheck()
        page.locator("#dashboard-choices li[data-name='sales.win_rate'] input").check()
        page.locator("#dashboard-choices li[data-name='sales.win_rate'] .tr-up").click()
        with page.expect_navigation():
            page.click("#dashboard-save")
        expect(page.locator(".tr-widget")).to_have_count(1)
        expect(page.locator(".tr-widget")).to_have_attribute("data-name", "sales.win_rate")
        page.locator(".tr-refresh").click()
        expect(page.locator(".tr-widget .tr-asof")).to_have_text("computed")
        page.click("#dashboard-customise")
        with page.expect_navigation():
            page.click("#dashboard-reset")
        expect(page.locator(".tr-widget")).to_have_count(4)
    watch.assert_clean()


def _contact_with_every_panel(app) -> tuple[int, list[str]]:
    """A demo contact whose page shows the panel of every enabled plugin that offers a
    contact panel, and whose timeline holds entries of more than one plugin.  (The
    core's own panels, such as consent, depend on the contact's data: left aside.)"""
    ext = app.extensions["trellis"]
    with app.app_context():
        expected = sorted(f"panel-{plugin}-{spec.name}" for plugin, spec in ext.panels
                          if plugin != "core" and ext.is_enabled(plugin)
                          and "contact" in spec.models)
    assert "panel-sales-customer" in expected
    client = app.test_client()
    from trellis.testing import csrf_token

    token = csrf_token(client.get("/login/").get_data(as_text=True))
    client.post("/login/", data={"username": ADMIN[0], "password": ADMIN[1],
                                 "csrf_token": token})
    from sqlalchemy import func, select

    from trellis.models import Activity

    with app.app_context():
        candidates = db.session.execute(
            select(Activity.contact_id).where(Activity.contact_id.is_not(None))
            .group_by(Activity.contact_id)
            .order_by(func.count(func.distinct(Activity.plugin)).desc(), Activity.contact_id)
            .limit(40)).scalars().all()
    for contact_id in candidates:
        html = client.get(f"/contactview/show/{contact_id}").get_data(as_text=True)
        shown = sorted(p for p in re.findall(r'id="(panel-[\w-]+)"', html)
                       if not p.startswith("panel-core-"))
        plugins = set(re.findall(r'<li data-plugin="(\w+)"', html))
        if shown == expected and len(plugins) > 1:
            return contact_id, expected
    pytest.fail(f"no demo contact shows all of {expected} with a mixed timeline")


def test_a_contacts_360_page_in_the_browser(demo_app, watched_page):
    from playwright.sync_api import expect

    from trellis import lifecycle

    app, users = demo_app
    page, watch = watched_page
    contact_id, expected = _contact_with_every_panel(app)
    with serve(app) as base:
        log_in(page, base, *ADMIN)
        page.goto(f"{base}/contactview/show/{contact_id}")
        for panel in expected:
            expect(page.locator(f"#{panel}")).to_be_visible()
        expect(page.locator(".trellis-panel:not([data-plugin=core])")).to_have_count(
            len(expected))
        entries = page.locator("#timeline-entries li")
        plugins = {entries.nth(i).get_attribute("data-plugin") for i in range(entries.count())}
        assert len(plugins) > 1, plugins
        screenshot(page, "customer-360.png")
        # filter the timeline to one plugin with the form
        page.select_option("select[name=tl_plugin]", "sales")
        with page.expect_navigation():
            page.click("#timeline-filters button[type=submit]")
        expect(page.locator("#timeline-entries li[data-plugin='sales']").first).to_be_visible()
        expect(page.locator("#timeline-entries li:not([data-plugin='sales'])")).to_have_count(0)
        # a disabled plugin's panel is gone from the page
        with app.app_context():
            lifecycle.disable(app.extensions["trellis"], "scoring")  # depends on sales
            lifecycle.disable(app.extensions["trellis"], "sales")
        page.goto(f"{base}/contactview/show/{contact_id}")
        expect(page.locator("#panel-sales-customer")).to_have_count(0)
        expect(page.locator("#customer-360")).to_be_visible()
        screenshot(page, "customer-360-sales-disabled.png")
    watch.assert_clean()


def test_building_a_report_in_the_browser(demo_app, watched_page):
    from playwright.sync_api import expect

    app, users = demo_app
    page, watch = watched_page
    with serve(app) as base:
        log_in(page, base, users["Manager"])  # reads every deal
        page.goto(f"{base}/reports/builder")
        expect(page.locator("#rb-model option[value=deal]")).to_have_count(1)
        page.select_option("#rb-model", "deal")
        page.click("#rb-add-group")
        page.locator(".tr-rb-group select").first.select_option("created_on")
        page.locator(".tr-rb-group select").nth(1).select_option("month")
        page.locator(".tr-rb-measure select").first.select_option("sum")
        page.locator(".tr-rb-measure select").nth(1).select_option("amount")
        page.select_option("#rb-chart", "series")
        page.click("#rb-run")
        expect(page.locator("#rb-result thead th")).to_have_text(["Created on (month)",
                                                                  "Sum of amount"])
        expect(page.locator("#rb-result tbody tr").first).to_be_visible()
        expect(page.locator("#rb-chart-box")).to_be_visible()
        assert page.evaluate("() => Chart.getChart(document.getElementById('rb-canvas'))"
                             ".options.scales.x.title.text") == "Created on (month)"
        screenshot(page, "report-builder.png")
        page.fill("#rb-name", "Won by month")
        page.click("#rb-to-dashboard")
        expect(page.locator("#rb-status")).to_contain_text("added it to your dashboard")
        page.goto(f"{base}/dashboard/")
        expect(page.locator(".tr-widget h4", has_text="Won by month")).to_have_count(1)
        # a bad filter value is refused with the field named
        page.goto(f"{base}/reports/builder")
        page.select_option("#rb-model", "deal")
        page.click("#rb-add-filter")
        page.locator(".tr-rb-filter select").first.select_option("amount")
        page.locator(".tr-rb-filter select").nth(1).select_option("gte")
        page.fill(".tr-rb-filter input", "lots")
        watch.expected_error_urls.add(f"{base}/api/v1/report/run")
        page.click("#rb-run")
        expect(page.locator("#rb-errors")).to_contain_text("filters #1 value: Not a valid number.")
    watch.assert_clean()
