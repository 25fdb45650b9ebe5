"""*Me > Two-factor login*: each user turns TOTP on (scanning a QR code made by
Trellis itself, then confirming one code) or off (with a current code); and
the API-key API with validated scopes.  See :mod:`trellis.auth`."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.sqla.apis import ApiKeyApi
from flask_appbuilder.security.sqla.apis.api_key.schema import (
    ApiKeyCreateResponseSchema,
    ApiKeyPostSchema,
    ApiKeyResponseSchema,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from marshmallow import ValidationError, fields, validates

from trellis import auth
from trellis.api import UtcDateTime
from trellis.db import db, utcnow

RESOURCE = "TwoFactor"
ENROL = "trellis_totp_enrol"


class TwoFactorForm(FlaskForm):
    """CSRF only; the code is read from the form."""


class TwoFactorView(BaseView):
    """``/twofactor/``: the signed-in user's own second factor."""

    route_base = "/twofactor"
    class_permission_name = RESOURCE
    default_view = "index"
    method_permission_name = {"index": "read", "enable": "write", "disable": "write"}

    @expose("/")
    @has_access
    def index(self):
        user = g.user
        form = TwoFactorForm()
        enabled = auth.totp_enabled(user)
        secret = None
        qr = None
        if not enabled:
            secret = session.get(ENROL) or auth.new_secret()
            session[ENROL] = secret  # shown until confirmed with a code
            qr = auth.qr_svg(auth.provisioning_uri(user, secret))
        return self.render_template("trellis/two_factor.html", enabled=enabled, form=form,
                                    secret=secret, qr=qr)

    @expose("/enable", methods=["POST"])
    @has_access
    def enable(self):
        user = g.user
        secret = session.get(ENROL)
        form = TwoFactorForm()
        row = auth.state(user.id, create=True)
        if not form.validate_on_submit() or not secret:
            flash(_("The form expired; please try again."), "warning")
        elif not auth.accept_code(row, secret, request.form.get("code")):
            db.session.rollback()
            flash(_("That code is not valid. Enter the 6-digit code your app shows now."),
                  "danger")
        else:
            row.totp_secret = secret
            row.totp_enabled_at = utcnow()
            auth._audit("totp_enabled", user)
            db.session.commit()
            session.pop(ENROL, None)
            flash(_("Two-factor login is on: you will be asked for a code after your "
                    "password."), "success")
        return redirect(url_for(".index"))

    @expose("/disable", methods=["POST"])
    @has_access
    def disable(self):
        user = g.user
        form = TwoFactorForm()
        if form.validate_on_submit() and auth.check_code(user, request.form.get("code")):
            row = auth.state(user.id)
            row.totp_secret = None
            row.totp_enabled_at = None
            auth._audit("totp_disabled", user)
            db.session.commit()
            flash(_("Two-factor login is off."), "info")
        else:
            db.session.rollback()
            flash(_("That code is not valid; two-factor login stays on."), "danger")
        return redirect(url_for(".index"))


class ScopedApiKeyPostSchema(ApiKeyPostSchema):
    @validates("scopes")
    def _scopes(self, value: Any, **_: Any) -> None:
        problems = auth.validate_scopes(value)
        if problems:
            raise ValidationError(problems)


_WHEN = {"created_on": "Creation timestamp", "expires_on": "Expiration timestamp",
         "revoked_on": "Revocation timestamp", "last_used_on": "Last usage timestamp"}


def _with_times(base: type, name: str, times: tuple[str, ...]) -> type:
    """FAB's API-key schema ``base`` (same component name), its timestamps written
    with their offset and allowed to be null, as FAB's answers have them."""
    attrs: dict[str, Any] = {t: UtcDateTime(allow_none=True, metadata={"description": _WHEN[t]})
                             for t in times}
    attrs["scopes"] = fields.String(allow_none=True, metadata={
        "description": "Comma-separated scopes (none: everything the user may do)"})
    return type(name, (base,), attrs)


KeyResponseSchema = _with_times(ApiKeyResponseSchema, "ApiKeyResponseSchema",
                                ("created_on", "expires_on", "revoked_on", "last_used_on"))
KeyCreateResponseSchema = _with_times(ApiKeyCreateResponseSchema, "ApiKeyCreateResponseSchema",
                                      ("created_on", "expires_on"))


class TrellisApiKeyApi(ApiKeyApi):
    """FAB's API-key API (``/api/v1/security/api_keys/``) with scopes checked:
    ``read``, ``write``, ``<plugin>:read``, ``<plugin>.<Resource>:write``; its
    timestamps carry their offset (FAB stores them naive, in UTC here)."""

    post_schema = ScopedApiKeyPostSchema()
    response_schema = KeyResponseSchema()
    create_response_schema = KeyCreateResponseSchema()
    openapi_spec_component_schemas = (ApiKeyPostSchema, KeyResponseSchema,
                                      KeyCreateResponseSchema)
