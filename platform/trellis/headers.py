"""HTTP security headers on every response (Flask-Talisman).

* ``Content-Security-Policy``: scripts only from Trellis itself and inline
  ``<script>`` blocks carrying the request's nonce (templates write
  ``nonce="{{ csp_nonce() }}"``, or FAB's ``baselib.get_nonce()``); no inline
  event handlers, no ``eval``, nothing from another host (the web UI serves
  every asset itself); ``frame-ancestors 'self'`` (no clickjacking),
  ``form-action 'self'``, ``object-src 'none'``, ``base-uri 'self'``.
  Styles may be inline (FAB's templates and widgets use ``style=``).
* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: SAMEORIGIN``,
  ``Referrer-Policy: same-origin``, a ``Permissions-Policy`` that turns off
  what a CRM never uses.
* Session cookies ``HttpOnly`` and ``SameSite=Lax``; ``Secure`` with
  ``TRELLIS_SECURE_COOKIES=1``.  ``TRELLIS_FORCE_HTTPS=1`` redirects http to
  https and sends ``Strict-Transport-Security``.

A response that sets its own ``Content-Security-Policy`` keeps it: a download
served with ``sandbox``, or a page meant to be framed by the customer's site
with its own ``frame-ancestors``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_talisman import Talisman

SELF = "'self'"

#: The policy; ``script-src`` also gets the per-request nonce.
CSP: dict[str, Any] = {
    "default-src": SELF,
    "script-src": SELF,
    "style-src": [SELF, "'unsafe-inline'"],
    "img-src": [SELF, "data:"],
    "font-src": [SELF, "data:"],
    "connect-src": SELF,
    "frame-src": SELF,
    "frame-ancestors": SELF,
    "form-action": SELF,
    "base-uri": SELF,
    "object-src": "'none'",
}

PERMISSIONS_POLICY = {"camera": "()", "microphone": "()", "geolocation": "()",
                      "payment": "()", "usb": "()", "browsing-topics": "()"}


class TrellisTalisman(Talisman):
    """Talisman, except that a response which set its own (stricter) policy keeps it —
    e.g. a download served with ``Content-Security-Policy: sandbox``."""

    def _set_content_security_policy_headers(self, headers: Any, options: Any) -> None:
        own = headers.get("Content-Security-Policy")
        super()._set_content_security_policy_headers(headers, options)
        if own:
            headers["Content-Security-Policy"] = own


def security_headers(app: Flask) -> Talisman:
    """Install the headers on ``app`` (called by the app factory)."""
    force_https = bool(app.config.get("TRELLIS_FORCE_HTTPS"))
    return TrellisTalisman(
        app,
        content_security_policy=CSP,
        content_security_policy_nonce_in=["script-src"],
        force_https=force_https,
        strict_transport_security=force_https,
        frame_options="SAMEORIGIN",
        referrer_policy="same-origin",
        permissions_policy=PERMISSIONS_POLICY,
        session_cookie_secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
        session_cookie_http_only=True,
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE", "Lax"),
    )
