"""Personal data: one export of everything Trellis holds about a contact, and
erasure on request.

**Export** (:func:`collect`, :func:`export_zip`): every loaded plugin, enabled
or not (a disabled plugin's data is still held), answers
``trellis_personal_data(session, contact_id)``; for a plugin that does not
implement it, the rows of its registered models whose ``contact_field`` points
at the contact are exported as they are.  The ZIP holds ``manifest.json`` and
one ``<plugin>.json`` per plugin.

**Erasure** (:func:`erase`), in one transaction: each plugin's
``trellis_erase_personal_data`` (raising aborts everything), then the contact
is anonymised in place (name replaced, e-mail, phone and title removed, tags
dropped), so deals, orders and tickets keep their figures without a person
behind them.  The consent ledger and its e-mail hashes are kept (an erased
person who unsubscribed is never e-mailed again), the audit entries of the
anonymised records are redacted, and the erasure itself is audited.

Both need a permission on ``core.Privacy`` (``can_read`` to export,
``can_write`` to erase) and obey the contact's record rule.  Exports are
audited too.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from flask import abort, current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select, update

from trellis import audit, events, rules
from trellis.audit import jsonable
from trellis.db import db, utcnow
from trellis.models import Contact, contact_tag
from trellis.specs import PanelSpec

RESOURCE = "Privacy"
CONFIRM_WORD = "ERASE"


class ErasureError(Exception):
    """An erasure was refused (nothing was changed)."""


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: jsonable(getattr(obj, c.key)) for c in obj.__mapper__.column_attrs}


def collect(session: Any, contact_id: int) -> dict[str, Any]:
    """``{plugin: data}``: everything the plugins hold about the contact."""
    ext = current_app.extensions["trellis"]
    out: dict[str, Any] = {}
    for plugin, data in ext.plugins.call_each("trellis_personal_data", session=session,
                                              contact_id=contact_id):
        out[plugin] = data
    implementing = ext.plugins.implementers("trellis_personal_data")
    for entry in ext.registry:
        field = entry.spec.contact_field
        if entry.plugin in implementing or not field:
            continue
        rows = session.scalars(select(entry.model).where(
            getattr(entry.model, field) == contact_id)).all()
        if rows:
            out.setdefault(entry.plugin, {})[entry.name] = [_row(r) for r in rows]
    return out


def export_zip(session: Any, contact_id: int) -> bytes:
    """The personal-data export as a ZIP: ``manifest.json`` + ``<plugin>.json``."""
    data = collect(session, contact_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps({
            "contact_id": contact_id, "generated_at": utcnow().isoformat(),
            "plugins": sorted(data)}, indent=2))
        for plugin, content in sorted(data.items()):
            archive.writestr(f"{plugin}.json", json.dumps(content, indent=2, default=str,
                                                          ensure_ascii=False))
    return buffer.getvalue()


def erase(session: Any, contact_id: int, reason: str = "") -> dict[str, Any]:
    """Erase the contact's personal data (see the module docstring); the caller commits.

    Raises :class:`ErasureError` when a plugin refuses (its message says why).
    """
    ext = current_app.extensions["trellis"]
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ErasureError(f"No contact with id {contact_id}.")
    done: list[str] = []
    for plugin in ext.plugins.implementers("trellis_erase_personal_data"):
        try:
            ext.plugins.call_one(plugin, "trellis_erase_personal_data", session=session,
                                 contact_id=contact_id)
        except Exception as exc:  # noqa: BLE001 - any refusal aborts the erasure
            raise ErasureError(f"Plugin {plugin!r} could not erase: {exc}") from exc
        done.append(plugin)
    session.flush()
    # In place with one UPDATE: the ORM would audit the old values we are removing.
    session.execute(update(Contact).where(Contact.id == contact_id).values(
        first_name="Erased", last_name=f"contact #{contact_id}", email=None, phone=None,
        title=None, national_id=None, updated_on=utcnow()),
        execution_options={"synchronize_session": False})
    session.execute(contact_tag.delete().where(contact_tag.c.contact_id == contact_id))
    session.expire(contact)
    redacted = audit.redact(session, "contact", [contact_id])
    audit.log(session, "erased", "contact", contact_id,
              {"reason": reason[:255], "plugins": done, "audit_entries_redacted": redacted})
    events.queue(session, "contact.erased", {"contact_id": contact_id}, plugin="core")
    return {"contact_id": contact_id, "plugins": done, "audit_entries_redacted": redacted}


def core_personal_data(session: Any, contact_id: int) -> dict[str, Any] | None:
    """The core's own part of the export (``trellis_personal_data`` of the core)."""
    from trellis.models import Activity, ConsentRecord, Note

    contact = session.get(Contact, contact_id)
    if contact is None:
        return None
    rows = lambda model, col: [_row(r) for r in session.scalars(  # noqa: E731
        select(model).where(col == contact_id).order_by(model.id))]
    return {"contact": _row(contact), "tags": [t.name for t in contact.tags],
            "account": _row(contact.account) if contact.account else None,
            "notes": rows(Note, Note.contact_id), "activities": rows(Activity, Activity.contact_id),
            "consent": rows(ConsentRecord, ConsentRecord.contact_id)}


def core_erase(session: Any, contact_id: int) -> None:
    """The core's part of an erasure: notes deleted; activity subjects and payloads
    removed (their type and time stay for statistics)."""
    from trellis.models import Activity, Note

    note_ids = list(session.scalars(select(Note.id).where(Note.contact_id == contact_id)))
    session.execute(Note.__table__.delete().where(Note.contact_id == contact_id))
    audit.redact(session, "note", note_ids)
    session.execute(update(Activity).where(Activity.contact_id == contact_id)
                    .values(subject="(erased)", payload=None),
                    execution_options={"synchronize_session": False})


# ------------------------------------------------------------------ web, API


def _visible_contact(contact_id: int) -> Contact | None:
    return db.session.scalar(rules.restrict(select(Contact).where(Contact.id == contact_id),
                                            Contact))


def _download(contact_id: int) -> Any:
    payload = export_zip(db.session, contact_id)
    audit.log(db.session, "exported", "contact", contact_id, {"what": "personal data"})
    db.session.commit()
    return send_file(io.BytesIO(payload), mimetype="application/zip", as_attachment=True,
                     download_name=f"personal-data-contact-{contact_id}.zip")


class EraseForm(FlaskForm):
    """CSRF only; the confirmation word and reason are read from the form."""


class PrivacyView(BaseView):
    """``/privacy/<contact id>/export`` and ``/privacy/<contact id>/erase``."""

    route_base = "/privacy"
    class_permission_name = RESOURCE
    default_view = "index"
    method_permission_name = {"index": "read", "export": "read", "erase": "write"}

    @expose("/")
    @has_access
    def index(self):
        return redirect(url_for("ContactView.list"))

    @expose("/<int:contact_id>/export")
    @has_access
    def export(self, contact_id: int):
        if _visible_contact(contact_id) is None:
            abort(404)
        return _download(contact_id)

    @expose("/<int:contact_id>/erase", methods=["GET", "POST"])
    @has_access
    def erase(self, contact_id: int):
        contact = _visible_contact(contact_id)
        if contact is None:
            abort(404)
        form = EraseForm()
        error = None
        if request.method == "POST":
            if not form.validate_on_submit():
                error = "The form expired; please try again."
            elif request.form.get("confirm") != CONFIRM_WORD:
                error = f"Type {CONFIRM_WORD} to confirm."
            else:
                try:
                    erase(db.session, contact_id, request.form.get("reason") or "")
                    db.session.commit()
                except ErasureError as exc:
                    db.session.rollback()
                    error = str(exc)
                else:
                    flash(_("The personal data of contact #%(id)s was erased.", id=contact_id),
                          "success")
                    return redirect(url_for("ContactView.show", pk=contact_id))
        return self.render_template("trellis/erase.html", contact=contact, form=form,
                                    error=error, confirm_word=CONFIRM_WORD), \
            400 if error else 200


class PrivacyApi(BaseApi):
    """``GET /api/v1/privacy/<contact id>/export`` (ZIP, or JSON with
    ``?format=json``) and ``POST /api/v1/privacy/<contact id>/erase``."""

    resource_name = "privacy"
    class_permission_name = RESOURCE
    method_permission_name = {"export": "read", "erase": "write"}
    allow_browser_login = True
    openapi_spec_tag = "Privacy"

    @expose("/<int:contact_id>/export", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    def export(self, contact_id: int):
        """Everything Trellis holds about a contact.
        ---
        get:
          parameters:
          - {in: path, name: contact_id, schema: {type: integer}}
          - {in: query, name: format, schema: {type: string, enum: [zip, json]}}
          responses:
            200: {description: "A ZIP (manifest.json + one JSON per plugin), or JSON"}
            404: {$ref: '#/components/responses/404'}
        """
        if _visible_contact(contact_id) is None:
            return self.response_404()
        if request.args.get("format") == "json":
            data = collect(db.session, contact_id)
            audit.log(db.session, "exported", "contact", contact_id, {"what": "personal data"})
            db.session.commit()
            return self.response(200, contact_id=contact_id, plugins=data)
        return _download(contact_id)

    @expose("/<int:contact_id>/erase", methods=["POST"])
    @protect()
    @safe
    @permission_name("erase")
    def erase(self, contact_id: int):
        """Erase a contact's personal data (irreversible).
        ---
        post:
          parameters:
          - {in: path, name: contact_id, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [confirm]
                  properties:
                    confirm: {type: string, description: "the word ERASE"}
                    reason: {type: string}
          responses:
            200: {description: What was erased}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        if _visible_contact(contact_id) is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("confirm") != CONFIRM_WORD:
            return self.response_400(message={"confirm": [f"Must be {CONFIRM_WORD!r}."]})
        try:
            result = erase(db.session, contact_id, str(body.get("reason") or ""))
            db.session.commit()
        except ErasureError as exc:
            db.session.rollback()
            return self.response_400(message={"_schema": [str(exc)]})
        return self.response(200, **result)


def personal_data_panel(contact: Contact) -> str:
    from flask import render_template

    return render_template("trellis/privacy_panel.html", contact=contact,
                           may_erase=current_app.appbuilder.sm.has_access(
                               "can_write", f"core.{RESOURCE}"))


PANEL = PanelSpec("personal_data", "Personal data", personal_data_panel, models=("contact",),
                  permission=("can_read", f"core.{RESOURCE}"), order=95)
