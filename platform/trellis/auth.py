"""Sign-in hardening on top of Flask-AppBuilder's database auth.

* **Lock-out**: after ``TRELLIS_LOCKOUT_ATTEMPTS`` failed logins in a row an
  account is locked for ``TRELLIS_LOCKOUT_MINUTES`` (on top of the per-address
  rate limit); ``trellis users unlock NAME`` lifts it early.
* **Two-factor login** (TOTP, RFC 6238, with ``pyotp``): a user who turned it
  on under *Me > Two-factor login* enters a 6-digit code after the password on
  the web (``/login/totp``) and sends it in the ``X-Trellis-OTP`` header with
  the JWT login API (``POST /api/v1/security/login``).  The
  secret is encrypted at rest (:mod:`trellis.crypto`); a code is accepted once.
* **Sessions**: a cookie session ends after ``TRELLIS_IDLE_MINUTES`` without a
  request, and logging out ends every session of that user made before (the
  user's *session epoch* is bumped; a stolen cookie stops working too).
* **API key scopes**: a key created with ``scopes`` (``read``, ``write``,
  ``sales:read``, ``sales.Deal:write``...) can do only that, within its user's
  permissions.
* **Audit**: logins, failed logins, lock-outs, logouts and second-factor
  changes go to the audit log (model ``user``).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pyotp
from flask import current_app, flash, g, redirect, request, session, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.views import AuthDBView
from flask_appbuilder.utils.base import get_safe_redirect
from flask_babel import gettext as _
from flask_login import login_user
from flask_wtf import FlaskForm

from trellis.db import db, utcnow

log = logging.getLogger(__name__)

EPOCH = "trellis_epoch"
SEEN = "trellis_seen"
PENDING = "trellis_2fa"
#: Seconds a password-checked login may wait for its second factor.
PENDING_SECONDS = 300
#: Wrong codes allowed for one pending login.
PENDING_ATTEMPTS = 5
ISSUER = "Trellis CRM"
#: The second factor of a JWT login (like GitHub's ``X-GitHub-OTP``).
OTP_HEADER = "X-Trellis-OTP"

_epochs: dict[int, tuple[int, float]] = {}


def _aware(value: Any) -> Any:
    from datetime import timezone

    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def state(user_id: int, create: bool = False) -> Any:
    from trellis.models import UserSecurity

    row = db.session.get(UserSecurity, user_id)
    if row is None and create:
        row = UserSecurity(user_id=user_id, session_epoch=0)
        db.session.add(row)
    return row


def _audit(action: str, user: Any, **details: Any) -> None:
    from trellis import audit

    audit.log(db.session, action, "user", user.id if user is not None else "?",
              {"username": getattr(user, "username", None), **details} if user is not None
              else details)


def _is_api() -> bool:
    return request.path.startswith("/api/")


# ------------------------------------------------------------------ lock-out


def locked_until(user: Any) -> Any:
    row = state(user.id)
    until = _aware(row.locked_until) if row is not None else None
    return until if until is not None and until > utcnow() else None


def unlock(user: Any) -> None:
    row = state(user.id, create=True)
    row.locked_until = None
    user.fail_login_count = 0


# ------------------------------------------------------------------ TOTP


def totp_enabled(user: Any) -> bool:
    row = state(user.id)
    return bool(row is not None and row.totp_enabled_at and row.totp_secret)


def check_code(user: Any, code: str | None) -> bool:
    """Whether ``code`` is the user's current TOTP code (or the one before or
    after, for clock drift), never accepting the same time step twice."""
    row = state(user.id)
    if row is None or not row.totp_secret or not code:
        return False
    return accept_code(row, row.totp_secret, code)


def accept_code(row: Any, secret: str, code: Any) -> bool:
    """Check ``code`` against ``secret`` (±1 time step) and remember its step in
    ``row`` so that it is never accepted again."""
    import hmac

    code = "".join(ch for ch in str(code or "") if ch.isdigit())
    if len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    current = int(time.time()) // totp.interval
    for step in (current, current - 1, current + 1):
        if step > (row.totp_last_step or -1) and hmac.compare_digest(
                totp.generate_otp(step), code):
            row.totp_last_step = step
            return True
    return False


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: Any, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (made here: no outside service)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, xmldecl=False, svgns=True,
                                    title="Two-factor login QR code")
    return out.getvalue().decode()


# ------------------------------------------------------------------ the security manager


class AuthMixin:
    """What :class:`trellis.fastpaths.TrellisSecurityManager` adds to FAB's auth."""

    def auth_user_db(self, username: str, password: str) -> Any:
        user = self.find_user(username=username) or self.find_user(email=username)
        if user is not None and locked_until(user) is not None:
            _audit("login_locked", user)
            db.session.commit()
            g.trellis_login_locked = True
            return None
        found = super().auth_user_db(username, password)
        if found is not None and _is_api() and totp_enabled(found):
            if not check_code(found, request.headers.get(OTP_HEADER)):
                self.update_user_auth_stat(found, False)
                return None
            db.session.commit()
        return found

    def on_user_login(self, user: Any) -> None:
        super().on_user_login(user)
        row = state(user.id, create=True)
        second = not _is_api() and totp_enabled(user) and not g.get("trellis_2fa_passed")
        _audit("login_password" if second else "login", user, source="api" if _is_api()
               else "web")
        db.session.commit()
        if not _is_api():
            session[EPOCH] = row.session_epoch or 0
            session[SEEN] = time.time()

    def on_user_login_failed(self, user: Any) -> None:
        super().on_user_login_failed(user)
        attempts = current_app.config.get("TRELLIS_LOCKOUT_ATTEMPTS", 5)
        _audit("login_failed", user, failures=user.fail_login_count)
        if attempts and (user.fail_login_count or 0) >= attempts:
            row = state(user.id, create=True)
            row.locked_until = utcnow() + timedelta(
                minutes=current_app.config.get("TRELLIS_LOCKOUT_MINUTES", 15))
            _audit("locked", user, until=row.locked_until.isoformat())
            log.warning("account %s locked after %d failed logins", user.username,
                        user.fail_login_count)
        db.session.commit()

    def on_user_logout(self, user: Any) -> None:
        super().on_user_logout(user)
        end_sessions(user.id)
        _audit("logout", user)
        db.session.commit()

    def load_user(self, pk: Any) -> Any:
        """A cookie session's user, unless the session ended: logged out since
        (older epoch) or idle for longer than ``TRELLIS_IDLE_MINUTES``."""
        user = super().load_user(pk)
        if user is None or str(session.get("_user_id")) != str(pk):
            return user  # a JWT (or API key) login: no cookie session to check
        if request.path.startswith("/static"):
            return user
        if session.get(EPOCH) != current_epoch(user.id):
            session.clear()
            return None
        idle = current_app.config.get("TRELLIS_IDLE_MINUTES", 60)
        seen = session.get(SEEN) or 0
        now = time.time()
        if idle and now - seen > idle * 60:
            session.clear()
            flash(_("You were signed out after %(minutes)s minutes without activity.",
                    minutes=idle), "info")
            return None
        if now - seen > 30:  # do not rewrite the cookie on every request
            session[SEEN] = now
        return user

    # -------------------------------------------------------------- API key scopes

    def validate_api_key(self, api_key_string: str) -> Any:
        user = super().validate_api_key(api_key_string)
        if user is not None:
            from sqlalchemy import select

            scopes = db.session.scalar(select(self.api_key_model.scopes).where(
                self.api_key_model.lookup_hash == self._compute_lookup_hash(api_key_string)))
            g.trellis_api_scopes = parse_scopes(scopes)
        return user

    def has_access(self, permission_name: str, view_name: str) -> bool:
        scopes = g.get("trellis_api_scopes") if g else None
        if scopes and not scope_allows(scopes, permission_name, view_name):
            return False
        return super().has_access(permission_name, view_name)


def current_epoch(user_id: int) -> int:
    """The user's session epoch, cached per process for the permission TTL."""
    ttl = current_app.config.get("TRELLIS_PERMISSION_CACHE_TTL", 2)
    hit = _epochs.get(user_id)
    now = time.monotonic()
    if hit is not None and now - hit[1] <= ttl:
        return hit[0]
    row = state(user_id)
    epoch = (row.session_epoch or 0) if row is not None else 0
    _epochs[user_id] = (epoch, now)
    return epoch


def end_sessions(user_id: int) -> None:
    """End every cookie session of the user (logout, password change)."""
    row = state(user_id, create=True)
    row.session_epoch = (row.session_epoch or 0) + 1
    _epochs.pop(user_id, None)


# ------------------------------------------------------------------ scopes


def parse_scopes(raw: str | None) -> list[tuple[str, str]]:
    """``"read, sales:write"`` -> ``[("", "read"), ("sales", "write")]``; ``[]`` = unlimited."""
    out = []
    for part in (raw or "").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        target, _, level = part.rpartition(":")
        if level not in ("read", "write"):
            target, level = part, "write"
        out.append((target, level))
    return out


def validate_scopes(raw: str | None) -> list[str]:
    problems = []
    for part in (raw or "").replace(" ", ",").split(","):
        part = part.strip()
        if part and part.rpartition(":")[2] not in ("read", "write") and part not in (
                "read", "write"):
            problems.append(f"{part!r}: use read, write, <plugin>:read or "
                            f"<plugin>.<Resource>:write")
    return problems


def scope_allows(scopes: list[tuple[str, str]], permission: str, resource: str) -> bool:
    needs_write = permission not in ("can_read", "menu_access", "can_access", "can_list",
                                     "can_get", "can_show")
    for target, level in scopes:
        if needs_write and level != "write":
            continue
        if not target or resource == target or resource.startswith(target + "."):
            return True
    return False


# ------------------------------------------------------------------ the web login


class TotpForm(FlaskForm):
    """CSRF only; the code is read from the form."""


class TrellisAuthDBView(AuthDBView):
    """FAB's login form, plus the second step for users with two-factor login."""

    @expose("/login/", methods=["GET", "POST"])
    def login(self):
        from flask_appbuilder.security.forms import LoginForm_db

        if g.user is not None and g.user.is_authenticated:
            return redirect(self._get_safe_next_url())
        form = LoginForm_db()
        if form.validate_on_submit():
            next_url = get_safe_redirect(request.args.get("next", ""))
            user = self.appbuilder.sm.auth_user_db(form.username.data, form.password.data)
            if not user:
                if g.get("trellis_login_locked"):
                    flash(_("This account is locked after too many failed logins. Try again "
                            "later or ask an administrator."), "danger")
                else:
                    flash(str(self.invalid_login_message), "warning")
                return redirect(self.appbuilder.get_url_for_login_with(next_url))
            if totp_enabled(user):
                session[PENDING] = {"uid": user.id, "at": time.time(), "next": next_url,
                                    "tries": 0}
                return redirect(url_for(".totp"))
            login_user(user, remember=False)
            return redirect(next_url)
        return self.render_template(self.login_template, title=self.title, form=form,
                                    appbuilder=self.appbuilder)

    @expose("/login/totp", methods=["GET", "POST"])
    def totp(self):
        pending = session.get(PENDING)
        if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
            session.pop(PENDING, None)
            flash(_("Please sign in again."), "warning")
            return redirect(self.appbuilder.get_url_for_login)
        form = TotpForm()
        error = None
        if request.method == "POST" and form.validate_on_submit():
            user = self.appbuilder.sm.get_user_by_id(pending["uid"])
            if user is not None and check_code(user, request.form.get("code")):
                session.pop(PENDING, None)
                g.trellis_2fa_passed = True
                self.appbuilder.sm.update_user_auth_stat(user, True)
                login_user(user, remember=False)
                return redirect(pending.get("next") or self.appbuilder.get_url_for_index)
            pending["tries"] = pending.get("tries", 0) + 1
            if user is not None:
                _audit("login_2fa_failed", user, tries=pending["tries"])
                db.session.commit()
            if pending["tries"] >= PENDING_ATTEMPTS:
                session.pop(PENDING, None)
                flash(_("Too many wrong codes. Please sign in again."), "danger")
                return redirect(self.appbuilder.get_url_for_login)
            session[PENDING] = pending
            error = "That code is not valid. Enter the current code from your app."
        return self.render_template("trellis/login_totp.html", form=form, error=error,
                                    appbuilder=self.appbuilder), 400 if error else 200


class TrellisSecurityApi(SecurityApi):
    """FAB's login API, documented as it answers: the 400 of a bad body carries
    field errors, and a refresh without a refresh token answers 422.  A body
    without ``provider`` is a 400 (FAB's schema lets it through, then fails)."""

    @expose("/login", methods=["POST"])
    def login(self) -> Any:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and "provider" not in body:
            return self.response_400(message={"provider": ["Missing data for required field."]})
        return super().login()

    login.__doc__ = SecurityApi.login.__doc__

    def add_api_spec(self, api_spec: Any) -> None:
        from trellis.api import ERROR_RESPONSES

        super().add_api_spec(api_spec)
        api_spec.components.responses.update(ERROR_RESPONSES)
        for path, operations in api_spec._paths.items():
            if path.startswith("/api/v1/security/"):
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    responses.setdefault("400", {"$ref": "#/components/responses/400"})
                    responses.setdefault("422", {"$ref": "#/components/responses/422"})
