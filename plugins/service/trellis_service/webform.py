"""The public web form: ``/support/`` (no login) opens a ticket (channel
``web_form``) for the contact with the given e-mail, creating the contact when
there is none.  Posting is rate-limited per client address
(``SERVICE_WEBFORM_RATE_LIMIT``, default ``5 per minute``; 429 beyond), bodies
over 64 KB answer 413, and invalid fields answer 400 with the message beside
each field (JSON clients get ``{"message": {field: [...]}}``).  While the
customer types, ``/support/suggest?q=`` offers published knowledge-base
articles (deflection)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, render_template, request

from trellis.context import acting_as
from trellis.db import db
from trellis.validation import RecordInvalid
from trellis_service import kb
from trellis_service.email_channel import _contact
from trellis_service.models import Ticket

HERE = Path(__file__).resolve().parent
MAX_BYTES = 64 * 1024
EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")
LIMITS = {"name": 100, "email": 255, "subject": 200, "description": 10_000}

form = Blueprint("service_form", __name__, url_prefix="/support",
                 template_folder=str(HERE / "templates"))


def _validate(data: dict[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    values = {k: str(data.get(k) or "").strip() for k in LIMITS}
    errors: dict[str, list[str]] = {}
    for field in ("email", "subject", "description"):
        if not values[field]:
            errors[field] = ["This field is required."]
    for field, limit in LIMITS.items():
        if len(values[field]) > limit:
            errors[field] = [f"At most {limit:,} characters."]
    if values["email"] and "email" not in errors and not EMAIL.match(values["email"]):
        errors["email"] = ["Enter a valid e-mail address, e.g. ada@example.com."]
    return values, errors


@form.route("/", methods=["GET", "POST"])
def submit() -> Any:
    wants_json = request.is_json
    if request.method == "GET":
        return render_template("service/webform.html", values={}, errors={})
    if (request.content_length or 0) > MAX_BYTES:
        message = {"form": [f"The request is larger than {MAX_BYTES // 1024} KB."]}
        return (jsonify(message=message), 413) if wants_json else (
            render_template("service/webform.html", values={}, errors=message), 413)
    data = (request.get_json(silent=True) if wants_json else request.form) or {}
    if not isinstance(data, dict) and not hasattr(data, "get"):
        data = {}
    values, errors = _validate(data)
    if not errors:
        with acting_as(None, "web-form", "job"):
            try:
                contact = _contact({"email": values["email"].lower(), "name": values["name"]})
                ticket = Ticket(subject=values["subject"], description=values["description"],
                                channel="web_form", email=values["email"].lower(),
                                contact=contact, account_id=contact.account_id)
                db.session.add(ticket)
                db.session.commit()
            except RecordInvalid as exc:
                db.session.rollback()
                errors = exc.messages
    if errors:
        return (jsonify(message=errors), 400) if wants_json else (
            render_template("service/webform.html", values=values, errors=errors), 400)
    if wants_json:
        return jsonify(ticket_id=ticket.id, reference=ticket.reference), 201
    return render_template("service/webform_done.html", ticket=ticket), 201


@form.route("/suggest", methods=["GET"])
def suggest() -> Any:
    """Published articles matching any word of ``q`` (at most 5)."""
    query = (request.args.get("q") or "")[:200]
    return jsonify(result=[kb.as_json(a) for a in
                           kb.search(db.session, query, match="any", limit=5)])


def limit(app: Any) -> None:
    """Rate-limit posting per client address (from ``trellis_app_ready``)."""
    limiter = getattr(app.appbuilder.sm, "limiter", None)
    if limiter is not None:
        limiter.limit(app.config.get("SERVICE_WEBFORM_RATE_LIMIT", "5 per minute"),
                      methods=["POST"])(form)
