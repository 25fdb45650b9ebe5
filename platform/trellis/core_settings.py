"""The core's own settings (``Admin > Settings > core``): the company currency and
overrides of the outgoing-mail configuration (see :mod:`trellis.mail`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

CURRENCY_CODE = r"^[A-Z]{3}$"
CURRENCY_ERROR = "Use a three-letter ISO 4217 code in capitals, e.g. USD."
HOST = r"^[A-Za-z0-9.-]*$"


def _networks(value: str) -> bool:
    from marshmallow import ValidationError

    from trellis.netguard import parse_networks

    try:
        parse_networks(value or "")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    return True


class CoreSettings(Schema):
    """The core's settings (``trellis_settings_schema`` of the core plugin)."""

    company_currency = fields.String(
        load_default="EUR", validate=validate.Regexp(CURRENCY_CODE, error=CURRENCY_ERROR),
        metadata={"label": "Company currency",
                  "description": "Exchange rates are given in it and reports are "
                                 "converted to it (ISO 4217)."})
    smtp_host = fields.String(
        load_default="", validate=[validate.Length(max=255),
                                   validate.Regexp(HOST, error="Not a valid host name.")],
        metadata={"label": "SMTP server",
                  "description": "Empty: TRELLIS_SMTP_HOST; neither: e-mail goes to the "
                                 "outbox folder."})
    smtp_port = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=65535),
        metadata={"label": "SMTP port", "description": "Empty: TRELLIS_SMTP_PORT (25)."})
    smtp_user = fields.String(
        load_default="", validate=validate.Length(max=255),
        metadata={"label": "SMTP user",
                  "description": "The password is read from TRELLIS_SMTP_PASSWORD only."})
    smtp_starttls = fields.Boolean(
        load_default=False, metadata={"label": "Use STARTTLS"})
    mail_from = fields.String(
        load_default="", validate=[validate.Length(max=255), validate.Regexp(
            r"^$|^[^@\s<>]+@[^@\s<>]+$", error="Not a valid e-mail address.")],
        metadata={"label": "Sender address", "description": "Empty: TRELLIS_MAIL_FROM."})
    allowed_private_networks = fields.String(
        load_default="", validate=_networks,
        metadata={"label": "Private networks outgoing calls may reach",
                  "description": "Webhooks and connectors refuse private, loopback and "
                                 "link-local addresses (trellis.netguard) unless listed "
                                 "here, comma-separated (e.g. 127.0.0.0/8, 10.1.2.0/24)."})
    dashboard_full_roles = fields.String(
        load_default="Manager", validate=validate.Length(max=500),
        metadata={"label": "Roles whose default dashboard shows every widget",
                  "description": "Comma-separated role names (admins always see every "
                                 "widget they may read); other roles see the widgets "
                                 "meant for them."})
    consent_opt_in_purposes = fields.String(
        load_default="", validate=validate.Regexp(
            r"^$|^[a-z][a-z_]{1,31}(,\s*[a-z][a-z_]{1,31})*$",
            error="A comma-separated list of purposes, e.g. marketing,newsletter."),
        metadata={"label": "Purposes that need consent first (opt-in)",
                  "description": "e.g. marketing under GDPR; other purposes are allowed "
                                 "until the contact withdraws (unsubscribes)."})
