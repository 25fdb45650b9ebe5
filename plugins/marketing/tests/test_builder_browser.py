"""The segment rule builder in a real browser (Chromium through Playwright): a
marketer builds "VIP AND NOT (e-mail contains acme)" with a nested group, sees
the preview count, and saves the segment; then the count of a purchase rule.
No request leaves 127.0.0.1 and the page raises no JavaScript error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from trellis.db import db
from trellis_marketing.models import Segment

from conftest import seed_people

try:
    from tests import test_browser as _browser
except ImportError:  # run on its own: the repository root is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests import test_browser as _browser

browser = _browser.browser
watched_page = _browser.watched_page
serve = _browser.serve


@pytest.mark.browser
def test_build_a_segment_and_see_its_preview_count(trellis_app_factory, watched_page):
    from playwright.sync_api import expect

    app = trellis_app_factory(plugins=["sales", "marketing"])
    seed_people(app)
    page, watch = watched_page
    with serve(app) as base:
        _browser.log_in(page, base)
        response = page.goto(f"{base}/marketing/segments/builder/")
        assert response.status == 200
        expect(page.locator("#segment-builder")).to_have_attribute("data-ready", "1")
        root = page.locator("#rules-root > .rule-group")
        first = root.locator(":scope > .group-children > .rule-row").first
        first.locator("[data-key=type]").select_option("tag")
        first.locator("[data-key=tag]").fill("vip")
        page.click("#preview-button")
        expect(page.locator("#preview-count")).to_have_text("2 contacts")  # ann, cat

        # AND a nested NOT group: e-mail contains "acme"
        root.locator(":scope > .group-head .add-group").click()
        nested = root.locator(":scope > .group-children > .rule-group")
        nested.locator(":scope > .group-head .group-not").check()
        nested.locator(":scope > .group-head .add-condition").click()
        rule = nested.locator(".rule-row")
        rule.locator("[data-key=type]").select_option("field")
        rule.locator("[data-key=field]").select_option("email")
        rule.locator("[data-key=op]").select_option("contains")
        rule.locator("[data-key=value]").fill("acme")
        page.click("#preview-button")
        expect(page.locator("#preview-count")).to_have_text("1 contact")  # cat
        expect(page.locator("#preview-rows tbody tr")).to_have_count(1)
        expect(page.locator("#preview-rows tbody")).to_contain_text("Cat Cedar")

        page.fill("#segment-name", "VIP outside Acme")
        page.click("#save-button")
        expect(page.locator("#save-result")).to_contain_text("Saved")

        # an invalid rule shows the API's error with its path (a 400 on purpose)
        watch.expected_error_urls.add(f"{base}/api/v1/segment/_preview")
        first.locator("[data-key=type]").select_option("purchase")
        first.locator("[data-key=measure]").select_option("total")
        first.locator("[data-key=op]").select_option("gte")
        first.locator("[data-key=value]").fill("lots")
        page.click("#preview-button")
        expect(page.locator("#builder-errors")).to_contain_text("rules.and.0.value")
        first.locator("[data-key=value]").fill("100")
        page.click("#preview-button")
        expect(page.locator("#preview-count")).to_have_text("0 contacts")  # ann/dan: acme
        nested.locator(":scope > .group-head .rule-remove").click()
        page.click("#preview-button")
        expect(page.locator("#preview-count")).to_have_text("2 contacts")  # ann, dan
        _browser.screenshot(page, "marketing-segment-builder.png")
    watch.assert_clean()
    with app.app_context():
        saved = db.session.scalar(select(Segment).where(Segment.name == "VIP outside Acme"))
        assert saved.rules == {"and": [{"type": "tag", "tag": "vip"},
                                       {"not": {"and": [{"type": "field", "field": "email",
                                                         "op": "contains", "value": "acme"}]}}]}
