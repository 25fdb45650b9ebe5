"""The automation rule builder in a real browser (Chromium through Playwright):
an admin builds the acceptance rule — deal won, amount above 10,000, a ticket and
a tag on the account — with the shared condition builder, dry-runs it on chosen
deals, saves it, and finds it again when the page reloads.  No request leaves
127.0.0.1 and the page raises no JavaScript error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests import test_browser as _browser
from tests.test_automation import PLUGINS, _customers
from trellis.automation.models import AutomationRule
from trellis.db import db

browser = _browser.browser
watched_page = _browser.watched_page
serve = _browser.serve


@pytest.mark.browser
def test_build_dry_run_and_save_a_rule(trellis_app_factory, watched_page, api_login):
    from playwright.sync_api import expect

    app = trellis_app_factory(plugins=PLUGINS)
    ids = _customers(app)
    client = app.test_client()
    headers = api_login(client)
    stages = {r["name"]: r["id"] for r in client.get(
        "/api/v1/stage/?q=(page_size:100)", headers=headers).get_json()["result"]}
    deals = [client.post("/api/v1/deal/", headers=headers, json={
        "name": name, "amount": amount, "contact_id": ids["ann"], "account_id": ids["acme"],
        "stage_id": stages["Won"]}).get_json()["id"] for name, amount in (("Small", "900"),
                                                                         ("Big", "25000"))]
    page, watch = watched_page
    with serve(app) as base:
        _browser.log_in(page, base)
        assert page.goto(f"{base}/automation/").status == 200
        page.click("#new-rule")
        expect(page.locator("#automation-builder")).to_have_attribute("data-ready", "1")
        page.fill("#rule-name", "Onboard big wins")
        page.select_option("#rule-model", "deal")
        expect(page.locator("#trigger-date-field option[value='expected_close']")
               ).to_have_count(1)  # the deal's fields have arrived
        page.select_option("#trigger-kind", "event")
        page.fill("#trigger-event", "deal.won")
        page.check("#rule-enabled")
        group = page.locator("#rules-root > .rule-group")
        group.locator(":scope > .group-head .add-condition").click()
        row = group.locator(".rule-row").first
        row.locator("[data-key=type]").select_option("record")
        row.locator("[data-key=field]").select_option("amount")
        row.locator("[data-key=op]").select_option("gt")
        row.locator("[data-key=value]").fill("10000")
        first = page.locator("#actions-list .action-row").first
        first.locator("[data-key=action]").select_option("service.create_ticket")
        first.locator("[data-param=subject]").fill("Onboarding: {{ record.name }}")
        page.click("#add-action")
        second = page.locator("#actions-list .action-row").nth(1)
        second.locator("[data-key=action]").select_option("core.add_tag")
        second.locator("[data-param=tag]").fill("customer")
        second.locator("[data-param=on]").fill("account")

        page.fill("#dry-ids", f"{deals[0]}, {deals[1]}")
        page.click("#dry-run")
        expect(page.locator("#dry-records tbody tr")).to_have_count(2)
        expect(page.locator("#dry-records tbody tr[data-matches='1']")).to_contain_text("Big")
        expect(page.locator("#dry-actions")).to_contain_text('"tickets":1')

        # a bad value shows the API's error with its path (a 400 on purpose)
        watch.expected_error_urls.add(f"{base}/api/v1/automation/rules")
        row.locator("[data-key=value]").fill("lots")
        page.click("#save-rule")
        expect(page.locator("#builder-errors")).to_contain_text("conditions.and.0.value")
        row.locator("[data-key=value]").fill("10000")
        with page.expect_navigation():
            page.click("#save-rule")
        expect(page.locator("#automation-builder")).to_have_attribute("data-ready", "1")
        with app.app_context():
            rule = db.session.scalar(select(AutomationRule))
            assert (rule.model, rule.trigger, rule.enabled) == (
                "deal", {"kind": "event", "event": "deal.won"}, True)
        # the saved rule comes back into the builder
        expect(page.locator("#rules-root .rule-row [data-key=field]")).to_have_value("amount")
        expect(page.locator("#trigger-event")).to_have_value("deal.won")
        expect(page.locator("#actions-list .action-row")).to_have_count(2)
        _browser.screenshot(page, "automation-builder.png")
    watch.assert_clean()
    with app.app_context():
        rule = db.session.scalar(select(AutomationRule))
        assert (rule.model, rule.trigger, rule.enabled) == (
            "deal", {"kind": "event", "event": "deal.won"}, True)
        assert rule.conditions == {"and": [{"type": "record", "field": "amount", "op": "gt",
                                            "value": 10000}]}
        assert rule.actions == [
            {"action": "service.create_ticket",
             "params": {"subject": "Onboarding: {{ record.name }}"}},
            {"action": "core.add_tag", "params": {"tag": "customer", "on": "account"}}]
