"""The consent ledger: who agreed to be reached, on which channel, for what.

Every grant or withdrawal is a :class:`~trellis.models.ConsentRecord` (channel
``email``, ``sms``, ``phone`` or ``messaging``; a purpose such as
``marketing`` or ``service``; the source, the lawful basis, who recorded it and
the evidence).  The ledger is append-only from the application's side: rows
are never changed or deleted through the ORM.  :class:`~trellis.models.ConsentState`
keeps the latest record per contact, channel and purpose, updated in the same
transaction, so sends check it with one indexed lookup.

Whether a contact *without* a record may be reached depends on the purpose:
purposes listed in the core setting ``consent_opt_in_purposes`` (e.g.
``marketing`` under GDPR) need a grant; the others are allowed until withdrawn
(an unsubscribe).  Every send checks it, set-based::

    stmt = select(Contact.id).where(consent.allowed(Contact.id, "email", "marketing"))

Web sign-ups use **double opt-in**: :func:`request_confirmation` e-mails a
signed link; the contact confirms on ``/consent/confirm/<token>`` (a button,
so that mail scanners following links do not confirm), which records the grant
with the evidence.  Withdrawals and the unsubscribe state survive the
contact's erasure (``email_hash``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask_wtf import FlaskForm
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, event, exists, false, not_, select

from trellis import signing
from trellis.api import model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db, utcnow
from trellis.models import ConsentRecord, ConsentState, Contact
from trellis.specs import BlueprintSpec, ModelSpec, PanelSpec
from trellis.views import TrellisModelView

CHANNELS = ("email", "sms", "phone", "messaging")
LAWFUL_BASES = ("consent", "contract", "legitimate_interest", "legal_obligation",
                "vital_interest", "public_task")
PURPOSE = r"^[a-z][a-z_]{1,31}$"
#: How long a double opt-in link stays valid.
CONFIRM_MAX_AGE = 7 * 86400
TOKEN_PURPOSE = "consent-confirm"


class ConsentImmutable(Exception):
    """The ledger is append-only: a record cannot be changed or deleted."""


def email_hash(email: str | None) -> str | None:
    """SHA-256 of the trimmed, lower-cased address (suppression survives erasure)."""
    if not email or not email.strip():
        return None
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def opt_in_purposes() -> set[str]:
    """Purposes that need a grant before a contact may be reached (core setting)."""
    from trellis.settings import get_settings

    raw = get_settings("core").get("consent_opt_in_purposes") or ""
    return {p.strip() for p in raw.split(",") if p.strip()}


# ------------------------------------------------------------------ writing


def record(session: Any, contact_id: int, channel: str, purpose: str, granted: bool, *,
           source: str = "manual", lawful_basis: str = "consent",
           evidence: dict[str, Any] | None = None, note: str | None = None,
           user_id: int | None = None) -> ConsentRecord:
    """Add a ledger entry (the current state follows at flush); the caller commits."""
    entry = ConsentRecord(contact_id=contact_id, channel=channel, purpose=purpose,
                          granted=granted, source=source, lawful_basis=lawful_basis,
                          evidence=evidence, note=note, recorded_by=user_id)
    session.add(entry)
    return entry


def consent_validate(entry: ConsentRecord) -> dict[str, list[str]]:
    import re

    errors: dict[str, list[str]] = {}
    if entry.contact_id is None and entry.contact is None:
        errors["contact_id"] = ["Missing data for required field."]
    if entry.channel not in CHANNELS:
        errors["channel"] = [f"Must be one of: {', '.join(CHANNELS)}."]
    if not re.match(PURPOSE, entry.purpose or ""):
        errors["purpose"] = ["Use a short lower-case name such as marketing or service."]
    if entry.lawful_basis not in LAWFUL_BASES:
        errors["lawful_basis"] = [f"Must be one of: {', '.join(LAWFUL_BASES)}."]
    if entry.granted is None:
        errors["granted"] = ["Missing data for required field."]
    return errors


def consent_before_save(session: Any, entry: ConsentRecord, action: str) -> None:
    """Stamp the record (who, when, e-mail hash) and move the current state to it."""
    if action != "created":
        return
    from trellis.context import current_actor

    entry.lawful_basis = entry.lawful_basis or "consent"
    entry.source = entry.source or "manual"
    entry.recorded_at = entry.recorded_at or utcnow()
    if entry.recorded_by is None:
        actor = current_actor()
        entry.recorded_by = actor.user_id if actor else None
    contact = entry.contact or (session.get(Contact, entry.contact_id)
                                if entry.contact_id else None)
    if contact is not None and entry.email_hash is None:
        entry.email_hash = email_hash(contact.email)
    state = session.get(ConsentState, (entry.contact_id, entry.channel, entry.purpose)) \
        if entry.contact_id else None
    if state is None and entry.contact_id:
        state = ConsentState(contact_id=entry.contact_id, channel=entry.channel,
                             purpose=entry.purpose)
        session.add(state)
    if state is not None:
        state.granted = bool(entry.granted)
        state.since = entry.recorded_at
        state.record = entry


@event.listens_for(ConsentRecord, "before_update")
@event.listens_for(ConsentRecord, "before_delete")
def _refuse_change(mapper: Any, connection: Any, target: ConsentRecord) -> None:
    if mapper.class_ is ConsentRecord:
        raise ConsentImmutable("the consent ledger is append-only: add a new record instead")


# ------------------------------------------------------------------ reading


def allowed(contact_id_col: Any, channel: str, purpose: str) -> Any:
    """SQL: may the contact in ``contact_id_col`` be reached on ``channel`` for
    ``purpose``?  Granted, or (for purposes not needing opt-in) never withdrawn."""
    state = ConsentState
    match = and_(state.contact_id == contact_id_col, state.channel == channel,
                 state.purpose == purpose)
    if purpose in opt_in_purposes():
        return exists().where(match, state.granted.is_(True))
    return not_(exists().where(match, state.granted.is_(False)))


def is_allowed(session: Any, contact_id: int, channel: str, purpose: str) -> bool:
    return bool(session.scalar(select(allowed(Contact.id, channel, purpose))
                               .where(Contact.id == contact_id)))


def suppressed_emails(channel: str = "email", purpose: str = "marketing") -> Any:
    """SQL: e-mail hashes whose latest ledger entry for ``channel``/``purpose`` is a
    withdrawal, including contacts erased or deleted since."""
    later = ConsentRecord.__table__.alias("later")
    latest = not_(exists().where(later.c.email_hash == ConsentRecord.email_hash,
                                 later.c.channel == channel, later.c.purpose == purpose,
                                 later.c.id > ConsentRecord.id))
    return select(ConsentRecord.email_hash).where(
        ConsentRecord.channel == channel, ConsentRecord.purpose == purpose,
        ConsentRecord.granted.is_(False), ConsentRecord.email_hash.is_not(None), latest)


# ------------------------------------------------------------------ double opt-in


def confirmation_link(contact_id: int, channel: str, purpose: str, source: str) -> str:
    from flask import url_for

    token = signing.sign(TOKEN_PURPOSE, {"c": contact_id, "ch": channel, "p": purpose,
                                         "s": source})
    base = current_app.config.get("TRELLIS_BASE_URL") or ""
    return f"{base}{url_for('consent.confirm', token=token)}"


def request_confirmation(session: Any, contact: Contact, purpose: str, *,
                         source: str = "web_form", evidence: dict[str, Any] | None = None) -> bool:
    """Double opt-in: e-mail ``contact`` a link confirming consent to e-mail for
    ``purpose``.  Nothing is granted until they confirm.  Returns whether a
    message went out."""
    from trellis import mail

    if not contact.email:
        return False
    link = confirmation_link(contact.id, "email", purpose, source)
    body = (f"Hello {contact.first_name or ''},\n\nplease confirm that you want to receive "
            f"{purpose} e-mails from us:\n\n{link}\n\nIf you did not ask for this, ignore "
            f"this message: nothing happens without your confirmation.\n")
    sent = mail.send([mail.Mail(to=contact.email, subject="Please confirm your subscription",
                                body=body)])
    return sent == 1


class ConfirmForm(FlaskForm):
    """CSRF only."""


consent_blueprint = Blueprint("consent", __name__, url_prefix="/consent")


@consent_blueprint.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """Public: the double opt-in link.  GET shows a button; POST records the grant."""
    try:
        data = signing.unsign(TOKEN_PURPOSE, token, max_age=CONFIRM_MAX_AGE)
        contact = db.session.get(Contact, int(data["c"]))
        channel, purpose = str(data["ch"]), str(data["p"])
    except (signing.BadToken, KeyError, TypeError, ValueError) as exc:
        message = str(exc) if isinstance(exc, signing.BadToken) else "This link is not valid."
        return _page(error=message), 400
    if contact is None:
        abort(404)
    form = ConfirmForm()
    done = False
    if request.method == "POST" and form.validate_on_submit():
        if not is_allowed(db.session, contact.id, channel, purpose) or \
                purpose in opt_in_purposes():
            state = db.session.get(ConsentState, (contact.id, channel, purpose))
            if state is None or not state.granted:
                record(db.session, contact.id, channel, purpose, True,
                       source=str(data.get("s") or "web_form"), lawful_basis="consent",
                       evidence={"method": "double_opt_in",
                                 "ip": request.remote_addr,
                                 "user_agent": (request.user_agent.string or "")[:255],
                                 "confirmed_at": utcnow().isoformat()})
                db.session.commit()
        done = True
    return _page(form=form, done=done, purpose=purpose, error=None)


def _page(**context: Any) -> str:
    """The confirmation page, in the site's layout (FAB's base template)."""
    appbuilder = current_app.appbuilder
    return render_template("trellis/consent_confirm.html", appbuilder=appbuilder,
                           base_template=appbuilder.base_template, **context)


# ------------------------------------------------------------------ web & API


class ConsentSchema(Schema):
    contact_id = fields.Integer(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(
        CHANNELS, error=f"Must be one of: {', '.join(CHANNELS)}."))
    purpose = fields.String(required=True, validate=validate.Regexp(
        PURPOSE, error="Use a short lower-case name such as marketing or service."))
    granted = fields.Boolean(required=True)
    lawful_basis = fields.String(load_default="consent", validate=validate.OneOf(
        LAWFUL_BASES, error=f"Must be one of: {', '.join(LAWFUL_BASES)}."))
    source = fields.String(load_default="manual", validate=validate.Length(min=1, max=32))
    note = fields.String(allow_none=True, validate=validate.Length(max=255))


class ConsentView(TrellisModelView):
    datamodel = TrellisSQLAInterface(ConsentRecord)
    class_permission_name = "Consent"
    base_permissions = ["can_read", "can_write"]
    list_columns = ["recorded_at", "contact", "channel", "purpose", "granted", "lawful_basis",
                    "source", "note"]
    add_columns = ["contact", "channel", "purpose", "granted", "lawful_basis", "source", "note"]
    search_columns = ["contact", "channel", "purpose", "granted", "source", "recorded_at"]
    show_columns = list_columns + ["recorded_by", "evidence", "email_hash"]
    base_order = ("recorded_at", "desc")
    include_route_methods = {"list", "show", "add", "api_read", "api_get", "action_post"}
    description_columns = {"channel": ", ".join(CHANNELS),
                           "lawful_basis": ", ".join(LAWFUL_BASES),
                           "purpose": "marketing, service, newsletter..."}


ConsentApi = model_api(
    ConsentRecord, "consent",
    ["contact_id", "channel", "purpose", "granted", "lawful_basis", "source", "note"],
    read_only=["recorded_at", "recorded_by", "evidence"], schema=ConsentSchema,
    search=["contact_id", "channel", "purpose", "granted", "source", "recorded_at"],
    optional_columns=["lawful_basis", "source"], class_permission_name="Consent",
    include_route_methods={"get_list", "get", "info", "post"}, tag="Consent")


def consent_panel(contact: Contact) -> str:
    states = db.session.scalars(select(ConsentState).where(
        ConsentState.contact_id == contact.id).order_by(ConsentState.channel,
                                                         ConsentState.purpose)).all()
    return render_template("trellis/consent_panel.html", states=states, contact=contact,
                           opt_in=opt_in_purposes())


MODEL_SPEC = ModelSpec(ConsentRecord, "consent", "Consent", contact_field="contact_id",
                       before_save=consent_before_save, validate=consent_validate)
PANEL = PanelSpec("consent", "Consent", consent_panel, models=("contact",),
                  permission=("can_read", "core.Consent"), order=90)
BLUEPRINT = BlueprintSpec(consent_blueprint, public=True)
