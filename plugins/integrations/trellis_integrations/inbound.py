"""Inbound webhooks: ``POST /integrations/hooks/<slug>`` from another system.

Each :class:`~trellis_integrations.models.InboundSource` has a signing secret
and a field mapping ``{"target field": "path.in.json"}``.  The sender signs
like Trellis signs its own webhooks (``X-Trellis-Timestamp`` and
``X-Trellis-Signature: v1=HMAC-SHA256(secret, "<timestamp>.<body>")``, at most
5 minutes old); anything else answers 401.  The mapped values then become:

* ``contact``: the contact with that e-mail is updated, or a new one created
  (validated by the contact schema; errors answer 400 naming the field);
* ``lead``: a new record of the registry model ``lead`` (the sales plugin's,
  when it is enabled), validated by its schema and its model rules;
* ``event``: a behaviour event, ingested like the ingestion API's.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError
from sqlalchemy import func, select

from trellis.context import acting_as
from trellis.db import db, utcnow
from trellis.models import Contact

from trellis_integrations.models import InboundSource
from trellis_integrations.webhooks import verify

inbound = Blueprint("inbound", __name__, url_prefix="/integrations/hooks")
MAX_BYTES = 64 * 1024


def new_secret() -> str:
    return "whin_" + secrets.token_urlsafe(32)


def pluck(data: Any, path: str) -> Any:
    """``pluck({"a": {"b": [1, 2]}}, "a.b.1") == 2``; ``None`` when missing."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def mapped(source: InboundSource, body: Any) -> dict[str, Any]:
    return {field: value for field, path in (source.mapping or {}).items()
            if (value := pluck(body, path)) is not None and value != ""}


def _upsert_contact(values: dict[str, Any]) -> tuple[int, str]:
    entry = current_app.extensions["trellis"].registry.get("contact")
    email = (values.get("email") or "").strip().lower() or None
    if email:
        values["email"] = email
    existing = db.session.scalar(select(Contact).where(func.lower(Contact.email) == email)
                                 .order_by(Contact.id)) if email else None
    data = entry.schema().load(values, partial=existing is not None)
    if existing is None:
        contact = Contact(**data)
        db.session.add(contact)
        db.session.flush()
        return contact.id, "created"
    for name, value in data.items():
        setattr(existing, name, value)
    db.session.flush()
    return existing.id, "updated"


def _create(model: str, values: dict[str, Any]) -> int:
    ext = current_app.extensions["trellis"]
    if model not in ext.registry or not ext.is_enabled(ext.registry.get(model).plugin):
        raise ValidationError({"target": [f"No {model} model here (is its plugin enabled?)."]})
    entry = ext.registry.get(model)
    data = entry.schema().load(values)
    record = entry.model(**data) if isinstance(data, dict) else data
    db.session.add(record)
    db.session.flush()
    return record.id


@inbound.route("/<slug>", methods=["POST"])
def receive(slug: str) -> Any:
    from trellis.validation import RecordInvalid
    from trellis_integrations.tracking import ingest

    source = db.session.scalar(select(InboundSource).where(InboundSource.slug == slug,
                                                           InboundSource.active.is_(True)))
    if source is None:
        return jsonify(message="Not found"), 404
    if (request.content_length or 0) > MAX_BYTES:
        return jsonify(message="Too large."), 413
    raw = request.get_data(cache=False)[:MAX_BYTES + 1]
    if len(raw) > MAX_BYTES:
        return jsonify(message="Too large."), 413
    if not verify(source.secret, request.headers, raw):
        return jsonify(message="Bad or missing signature."), 401
    try:
        body = json.loads(raw)
    except ValueError:
        return jsonify(message={"_schema": ["Send JSON."]}), 400
    values = mapped(source, body)
    source.received_count = (source.received_count or 0) + 1
    source.last_received_at = utcnow()
    with acting_as(None, f"inbound:{source.slug}", "job"):
        try:
            if source.target == "event":
                result = ingest([values], source=f"inbound:{source.slug}")
                if result["errors"]:
                    db.session.rollback()
                    return jsonify(message=result["errors"]["0"]), 400
                return jsonify(accepted=result["accepted"]), 200
            if source.target == "contact":
                record_id, action = _upsert_contact(values)
            else:
                record_id, action = _create(source.target, values), "created"
            db.session.commit()
        except (ValidationError, RecordInvalid) as exc:
            db.session.rollback()
            return jsonify(message=exc.messages), 400
    return jsonify(id=record_id, action=action, target=source.target), 200
