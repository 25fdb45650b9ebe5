"""The import page in a real browser: upload, mapping, and live progress while a
real ``trellis worker`` runs the import (PostgreSQL + Redis + Chromium)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trellis.db import db
from trellis.models import Contact

from integrations_testkit import worker_site  # noqa: F401

try:
    from tests import test_browser as _browser
except ImportError:  # run on its own from elsewhere: the repository root is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests import test_browser as _browser

browser = _browser.browser
watched_page = _browser.watched_page
serve = _browser.serve

ROWS = 3000


def _csv() -> bytes:
    lines = ["first_name,last_name,email"]
    for n in range(ROWS):
        email = f"person{n}@example.com" if n % 1000 != 7 else "broken-address"
        lines.append(f"Person,Number {n},{email}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.redis
def test_import_page_shows_live_progress(worker_site, watched_page, monkeypatch, tmp_path):
    from playwright.sync_api import expect

    monkeypatch.setenv("TRELLIS_INSTANCE_PATH", str(tmp_path))
    app, start_worker = worker_site
    with app.app_context():
        from trellis.settings import update_settings

        update_settings("integrations", {"import_batch_size": 100})
    start_worker()
    page, watch = watched_page
    seen: list[dict] = []

    def record(response):
        if "/integrations/imports/" in response.url and response.url.endswith("/status"):
            try:
                seen.append(response.json())
            except Exception:  # noqa: BLE001 - the last one: the page reloaded at once
                pass

    page.on("response", record)
    with serve(app) as base:
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "admin-password")
        with page.expect_navigation():
            page.click("input[type=submit]")
        page.goto(f"{base}/integrations/imports/")
        page.select_option("#model", "contact")
        page.fill("#source", "Trade fair")
        page.set_input_files("#file", files=[{"name": "people.csv", "mimeType": "text/csv",
                                             "buffer": _csv()}])
        with page.expect_navigation():
            page.click("#import-upload button[type=submit]")
        # the mapping is suggested from the column names; the preview shows the rows
        expect(page.locator("#import-preview tbody tr")).to_have_count(10)
        expect(page.locator('select[data-column="email"]')).to_have_value("email")
        expect(page.locator('select[data-column="last_name"]')).to_have_value("last_name")
        _browser.screenshot(page, "import-mapping.png")
        with page.expect_navigation():
            page.click("#start-import")
        expect(page.locator("#import-state")).to_have_text("done", timeout=90_000)
        expect(page.locator("#count-created")).to_have_text(str(ROWS - 3))
        expect(page.locator("#count-errors")).to_have_text("3")
        expect(page.locator("#import-errors tbody tr")).to_have_count(3)
        expect(page.locator("#import-errors")).to_contain_text("Not a valid e-mail address.")
        expect(page.locator("#error-report")).to_be_visible()
        _browser.screenshot(page, "import-done.png")
    # the page followed the import while it ran: it saw it part-way through
    percents = [s["percent"] for s in seen]
    assert any(0 < p < 100 for p in percents), percents
    assert percents == sorted(percents)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contact)) == ROWS - 3
    watch.assert_clean()
