"""Acceptance tests in a real browser: the Plugins page as an admin sees it.

The app is served for real (werkzeug on 127.0.0.1, a port the OS picks, in a
background thread) and driven by Debian's headless Chromium through
Playwright.  Everything happens in one running server: disabling and enabling
a plugin takes effect without a restart.

Every test fails if the browser requests anything from a host other than
127.0.0.1 (such requests are also aborted, so nothing leaves the machine) or
if the page raises a JavaScript error or logs a console error.  Screenshots of
the Plugins page go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from trellis.testing import ADMIN, _unavailable

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLUGINS = ["sales", "service", "scoring", "marketing", "integrations"]
LABELS = {"sales": "Sales", "service": "Service", "scoring": "Scoring",
          "marketing": "Marketing", "integrations": "Integrations"}
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
HOST = "127.0.0.1"
#: Generous: a page of the demo dashboard computes every widget, and CI machines
#: are shared (a slow page is not what these tests are about).
TIMEOUT_MS = 45_000


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium (never a downloaded one)."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"Chromium at {CHROMIUM}", FileNotFoundError(CHROMIUM))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable("The playwright package", exc)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        yield browser
        browser.close()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 from a background thread; yield its base URL."""
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="trellis-test-server",
                             daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


class Watch:
    """What the browser did that a test must not accept: requests to other
    hosts, uncaught JavaScript errors, console errors."""

    def __init__(self) -> None:
        self.foreign: list[str] = []
        self.js_errors: list[str] = []
        self.console_errors: list[str] = []
        #: URLs we navigate to on purpose expecting an HTTP error status;
        #: Chromium logs "Failed to load resource" for them, which is expected.
        self.expected_error_urls: set[str] = set()

    def on_request(self, request: Any) -> None:
        if urlsplit(request.url).hostname != HOST and not request.url.startswith(
                ("data:", "blob:", "about:")):
            try:
                frame = request.frame.url
            except Exception:  # noqa: BLE001 - e.g. a service worker's request
                frame = "?"
            self.foreign.append(f"{request.method} {request.url} (from page {frame})")

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if url in self.expected_error_urls and "Failed to load resource" in message.text:
            return
        self.console_errors.append(f"{message.text} (at {url or '?'})")

    def on_pageerror(self, error: Any) -> None:
        self.js_errors.append(str(error))

    def assert_clean(self) -> None:
        problems = (
            [f"request to another host: {r}" for r in self.foreign]
            + [f"JavaScript error: {e}" for e in self.js_errors]
            + [f"console error: {e}" for e in self.console_errors]
        )
        assert not problems, "\n".join(problems)


@pytest.fixture
def watched_page(browser: Any) -> Iterator[tuple[Any, Watch]]:
    """A fresh browser context and page, watched for foreign requests and errors."""
    watch = Watch()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    # The whole context (not just the page) so a popup could not slip through.
    context.on("request", watch.on_request)
    # Nothing leaves the machine: other hosts are recorded above, then aborted.
    context.route(lambda url: urlsplit(url).hostname not in (HOST, None),
                  lambda route: route.abort())
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_pageerror)
    yield page, watch
    context.close()


# ------------------------------------------------------------------ helpers


def log_in(page: Any, base: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/login/")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert urlsplit(page.url).path != "/login/", "login failed: still on the login page"
    expect(page.locator(".navbar")).to_contain_text("Admin")


def open_plugins(page: Any, base: str) -> None:
    response = page.goto(f"{base}/plugins/")
    assert response is not None and response.status == 200, response and response.status
    assert page.locator("h2").inner_text() == "Plugins"


def row(page: Any, name: str) -> Any:
    return page.locator(f"#plugins tr[data-plugin='{name}']")


def cell(page: Any, name: str, column: int) -> Any:
    """Cells: 0 plugin, 1 version, 2 depends on, 3 used by, 4 status, 5 actions."""
    return row(page, name).locator("td").nth(column)


def menu_category(page: Any, label: str) -> Any:
    """The navbar's drop-down category called exactly ``label``."""
    return page.locator(".navbar .navbar-nav > li.dropdown > a.dropdown-toggle").filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))


def api_status(page: Any, url: str) -> int:
    """GET ``url`` with the browser's own cookies (its login session)."""
    return page.request.get(url).status


def fetch_status(page: Any, url: str) -> int:
    """GET ``url`` from the page's JavaScript with the session cookie."""
    return page.evaluate(
        "async (url) => (await fetch(url, {credentials: 'same-origin'})).status", url)


def toggle(page: Any, name: str, button: str) -> None:
    with page.expect_navigation():
        row(page, name).get_by_role("button", name=button).click()
    assert urlsplit(page.url).path == "/plugins/"


def screenshot(page: Any, filename: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / filename), full_page=True)


# ------------------------------------------------------------------ tests


def test_admin_lists_disables_and_enables_plugins(trellis_app_factory, watched_page,
                                                  monkeypatch, tmp_path):
    from playwright.sync_api import expect

    monkeypatch.setenv("TRELLIS_INSTANCE_PATH", str(tmp_path))
    page, watch = watched_page
    app = trellis_app_factory(plugins=PLUGINS)

    with serve(app) as base:
        log_in(page, base)

        # 1. Every plugin, with its version, dependencies and state.
        open_plugins(page, base)
        for name in PLUGINS:
            expect(row(page, name)).to_have_count(1)
            expect(cell(page, name, 0)).to_contain_text(LABELS[name])
            expect(cell(page, name, 0)).to_contain_text(name)
            expect(cell(page, name, 1)).to_have_text("0.1.0")
            expect(cell(page, name, 4)).to_have_text("enabled")
            expect(row(page, name).get_by_role("button", name="Disable")).to_be_visible()
        expect(cell(page, "scoring", 2)).to_have_text(LABELS["sales"])
        expect(cell(page, "sales", 3)).to_have_text(LABELS["scoring"])
        for name in ("sales", "service", "marketing", "integrations"):
            expect(cell(page, name, 2)).to_have_text("—")
        for name in PLUGINS:
            expect(menu_category(page, LABELS[name])).to_have_count(1)
        assert api_status(page, f"{base}/api/v1/marketing/status") == 200
        assert fetch_status(page, "/api/v1/marketing/status") == 200
        screenshot(page, "plugins-before-disable.png")

        # 2. Disable marketing: its menu goes, its API and pages answer 404.
        toggle(page, "marketing", "Disable")
        expect(page.locator(".alert-success")).to_contain_text("Plugin marketing disabled.")
        expect(cell(page, "marketing", 4)).to_have_text("disabled")
        expect(row(page, "marketing").get_by_role("button", name="Enable")).to_be_visible()
        expect(cell(page, "sales", 4)).to_have_text("enabled")
        screenshot(page, "plugins-after-disable.png")
        expect(menu_category(page, "Marketing")).to_have_count(0)
        expect(menu_category(page, "Sales")).to_have_count(1)
        assert api_status(page, f"{base}/api/v1/marketing/status") == 404
        watch.expected_error_urls.add(f"{base}/api/v1/marketing/status")
        assert fetch_status(page, "/api/v1/marketing/status") == 404
        assert api_status(page, f"{base}/api/v1/sales/status") == 200
        watch.expected_error_urls.add(f"{base}/marketing/")
        response = page.goto(f"{base}/marketing/")
        assert response is not None and response.status == 404

        # ... and enabling it again brings everything back, same server.
        open_plugins(page, base)
        toggle(page, "marketing", "Enable")
        expect(page.locator(".alert-success")).to_contain_text("Plugin marketing enabled.")
        expect(cell(page, "marketing", 4)).to_have_text("enabled")
        expect(menu_category(page, "Marketing")).to_have_count(1)
        assert api_status(page, f"{base}/api/v1/marketing/status") == 200
        assert fetch_status(page, "/api/v1/marketing/status") == 200
        response = page.goto(f"{base}/marketing/")
        assert response is not None and response.status == 200

        # 3. Sales cannot be disabled while scoring depends on it.
        open_plugins(page, base)
        toggle(page, "sales", "Disable")
        expect(page.locator(".alert-danger")).to_contain_text(
            "plugin 'sales' cannot be disabled: enabled plugin(s) 'scoring' depend on it")
        expect(page.locator(".alert-success")).to_have_count(0)
        expect(cell(page, "sales", 4)).to_have_text("enabled")
        expect(row(page, "sales").get_by_role("button", name="Disable")).to_be_visible()
        expect(menu_category(page, "Sales")).to_have_count(1)
        assert api_status(page, f"{base}/api/v1/sales/status") == 200
        screenshot(page, "plugins-sales-refused.png")

    watch.assert_clean()


def test_broken_plugin_is_reported_and_the_rest_works(trellis_app_factory, watched_page,
                                                      monkeypatch, tmp_path):
    from playwright.sync_api import expect

    monkeypatch.setenv("TRELLIS_INSTANCE_PATH", str(tmp_path))
    page, watch = watched_page
    app = trellis_app_factory(plugins=PLUGINS,
                              extra_plugins=[("broken", "trellis_no_such_module_xyz")])

    with serve(app) as base:
        log_in(page, base)
        open_plugins(page, base)

        expect(row(page, "broken")).to_have_count(1)
        expect(cell(page, "broken", 4).locator(".label")).to_have_text("error")
        error = cell(page, "broken", 4).locator(".plugin-error")
        expect(error).to_contain_text("failed to import")
        expect(error).to_contain_text("trellis_no_such_module_xyz")
        expect(row(page, "broken").get_by_role("button")).to_have_count(0)
        for name in PLUGINS:
            expect(cell(page, name, 4)).to_have_text("enabled")
        screenshot(page, "plugins-broken.png")

        # The rest of the platform still works.
        response = page.request.get(f"{base}/api/v1/plugins/")
        assert response.status == 200
        rows = {r["name"]: r for r in response.json()["result"]}
        assert {name for name in PLUGINS if rows[name]["enabled"]} == set(PLUGINS)
        assert all(rows[name]["error"] is None for name in PLUGINS)
        assert rows["broken"]["enabled"] is False
        assert "failed to import" in rows["broken"]["error"]
        assert api_status(page, f"{base}/api/v1/sales/status") == 200
        expect(menu_category(page, "Sales")).to_have_count(1)
        response = page.goto(f"{base}/sales/")
        assert response is not None and response.status == 200

    watch.assert_clean()
