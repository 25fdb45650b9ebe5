"""Security headers and cookie flags on every response; the Content-Security-Policy
enforced by a real browser (an injected inline script does not run) while every
page Trellis serves keeps working under it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ALL_PLUGINS
from tests.test_browser import browser, serve, watched_page  # noqa: F401 - fixtures


def nonce_of(response) -> str:
    found = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert found, response.headers["Content-Security-Policy"]
    return found.group(1)


def test_pages_and_apis_carry_the_headers_and_a_fresh_nonce(trellis_app_factory, api_login):
    app = trellis_app_factory()
    client = app.test_client()
    first, second = client.get("/login/"), client.get("/login/")
    for response in (first, second):
        policy = response.headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'self'",
                          "frame-ancestors 'self'", "form-action 'self'"):
            assert directive in policy
        assert "unsafe-eval" not in policy
        assert not re.search(r"script-src[^;]*'unsafe-inline'", policy)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "camera=()" in response.headers["Permissions-Policy"]
        assert "Strict-Transport-Security" not in response.headers  # plain http here
    assert nonce_of(first) != nonce_of(second)
    # the page's own scripts carry the nonce of its response
    assert f'nonce="{nonce_of(second)}"' in second.get_data(as_text=True)
    api = client.get("/api/v1/contact/", headers=api_login(client))
    assert api.status_code == 200 and api.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_flags_follow_the_configuration(trellis_app_factory):
    plain = trellis_app_factory().test_client()
    cookie = plain.get("/login/").headers["Set-Cookie"]  # the session (its CSRF token)
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    secure = trellis_app_factory(config={"SESSION_COOKIE_SECURE": True,
                                         "TRELLIS_FORCE_HTTPS": True}).test_client()
    redirected = secure.get("/login/")
    assert redirected.status_code == 302
    assert redirected.headers["Location"].startswith("https://localhost/login/")
    over_tls = secure.get("/login/", base_url="https://localhost")
    assert over_tls.status_code == 200
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = over_tls.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Secure" in cookie and "HttpOnly" in cookie


INJECT = """() => {
  window.__injected = false;
  const s = document.createElement('script');
  s.textContent = 'window.__injected = true';
  document.body.appendChild(s);
  const a = document.createElement('img');
  a.setAttribute('src', 'data:image/png;base64,broken');
  a.setAttribute('onerror', 'window.__injected = true');
  document.body.appendChild(a);
  return new Promise(r => setTimeout(() => r(window.__injected), 200));
}"""


@pytest.mark.browser
def test_the_browser_refuses_injected_script_and_every_page_still_works(
        trellis_app_factory, watched_page):  # noqa: F811 - fixture
    from playwright.sync_api import expect

    page, watch = watched_page
    app = trellis_app_factory(plugins=ALL_PLUGINS)
    with app.app_context():
        from trellis.demo import load_demo

        load_demo(contacts=5)
    with serve(app) as base:
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "admin-password")
        with page.expect_navigation():
            page.click("input[type=submit]")
        assert page.evaluate(INJECT) is False
        refused = [e for e in watch.console_errors if "Content Security Policy" in e]
        assert len(refused) >= 2, watch.console_errors  # the script and the handler
        watch.console_errors.clear()
        # pages with our own and FAB's scripts: they work, nothing refused
        page.goto(f"{base}/contactview/list/")
        page.locator("a.btn-sm[href*='/contactview/show/']").first.click()  # FAB's JS tabs
        page.goto(f"{base}/contactview/add")
        expect(page.locator("form")).not_to_have_count(0)
        page.goto(f"{base}/dashboard/")
        expect(page.locator(".tr-chart[data-drawn='1']")).not_to_have_count(0)
        page.goto(f"{base}/reports/builder")
        page.goto(f"{base}/swagger/v1")
        expect(page.locator("#swagger-ui .info")).to_be_visible(timeout=30_000)  # a big spec
        watch.assert_clean()
