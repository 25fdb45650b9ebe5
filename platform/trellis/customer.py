"""Customer 360: one page per contact and per account with everything every
plugin knows about the customer.

The contact's and the account's record pages (``/contactview/show/<id>``,
``/accountview/show/<id>``) are the customer pages: the identity block (the
record's fields, owner and tags), the panels of every enabled plugin
(:mod:`trellis.panels`), then one merged **Activity timeline** — the core's
``Activity`` rows, which every plugin writes — filterable by type, plugin and
date range and paged by key (``occurred_at``, ``id``), never by ``OFFSET``.
``GET /api/v1/customer/<contact|account>/<id>/timeline`` returns the same
entries as JSON.

What the timeline shows, under the record rules: nothing unless the customer
itself is visible to the user (the page and the API answer 404).  A contact's
timeline is the activities on that contact.  An **account's timeline includes
its contacts' activities** (those on the account, and those on any of its
contacts), but never an activity of a contact the user may not see.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any, Mapping

from flask import current_app, request
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_appbuilder.security.sqla.models import User
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import and_, or_, select, tuple_

from trellis import rules
from trellis.db import db
from trellis.models import Account, Activity, Contact

PAGE_SIZE, MAX_PAGE_SIZE = 25, 100
MODELS = {"contact": Contact, "account": Account}


class TimelineArgs(Schema):
    """Query arguments of the timeline (page and API alike)."""

    type = fields.String(load_default=None, validate=validate.Length(max=64))
    plugin = fields.String(load_default=None, validate=validate.Length(max=64))
    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)
    before = fields.String(load_default=None, validate=validate.Length(max=80))
    limit = fields.Integer(load_default=PAGE_SIZE, validate=validate.Range(min=1,
                                                                           max=MAX_PAGE_SIZE))


def parse_args(args: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
    """Timeline arguments from a query string (``prefix``: ``tl_`` on the page);
    ``ValidationError`` names the bad one."""
    raw = {k[len(prefix):]: v for k, v in args.items() if k.startswith(prefix) and v != ""}
    known = {k: v for k, v in raw.items() if k in TimelineArgs().fields}
    data = TimelineArgs().load(known)
    if data["before"] is not None:
        data["before"] = decode_cursor(data["before"])
    if data["since"] and data["until"] and data["since"] > data["until"]:
        raise ValidationError({"until": ["Must not be before the start date."]})
    return data


def encode_cursor(occurred_at: datetime, activity_id: int) -> str:
    return f"{occurred_at.isoformat()}|{activity_id}"


def decode_cursor(value: str) -> tuple[datetime, int]:
    try:
        moment, _, key = value.rpartition("|")
        return datetime.fromisoformat(moment), int(key)
    except ValueError:
        raise ValidationError({"before": ["Not a valid position in the timeline."]}) from None


def _for(record: Any) -> Any:
    """The condition selecting a customer's activities that the user may see."""
    if isinstance(record, Contact):
        return Activity.contact_id == record.id
    contacts = rules.restrict(select(Contact.id).where(Contact.account_id == record.id), Contact)
    condition = or_(Activity.account_id == record.id, Activity.contact_id.in_(contacts))
    visible = rules.visible_ids(Contact)
    if visible is not None:  # an activity of a hidden contact stays hidden
        condition = and_(condition, or_(Activity.contact_id.is_(None),
                                        Activity.contact_id.in_(visible)))
    return condition


def _midnight(day: Any) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def timeline(record: Any, args: Mapping[str, Any]) -> dict[str, Any]:
    """One page of the customer's timeline, newest first:
    ``{"entries": [...], "next": cursor or None}``."""
    stmt = (select(Activity, User.username).outerjoin(User, User.id == Activity.user_id)
            .where(_for(record)))
    if args.get("type"):
        stmt = stmt.where(Activity.type == args["type"])
    if args.get("plugin"):
        stmt = stmt.where(Activity.plugin == args["plugin"])
    if args.get("since"):
        stmt = stmt.where(Activity.occurred_at >= _midnight(args["since"]))
    if args.get("until"):
        stmt = stmt.where(Activity.occurred_at < _midnight(args["until"] + timedelta(days=1)))
    if args.get("before"):
        moment, key = args["before"]
        stmt = stmt.where(tuple_(Activity.occurred_at, Activity.id) < tuple_(moment, key))
    limit = args.get("limit") or PAGE_SIZE
    rows = db.session.execute(stmt.order_by(Activity.occurred_at.desc(), Activity.id.desc())
                              .limit(limit + 1)).all()
    labels = plugin_labels()
    entries = [{"id": a.id, "occurred_at": a.occurred_at.isoformat() if a.occurred_at else None,
                "type": a.type, "subject": a.subject, "plugin": a.plugin,
                "plugin_label": labels.get(a.plugin, a.plugin), "user": username,
                "contact_id": a.contact_id, "account_id": a.account_id}
               for a, username in rows[:limit]]
    last = rows[limit - 1][0] if len(rows) > limit else None
    return {"entries": entries,
            "next": encode_cursor(last.occurred_at, last.id) if last is not None else None}


def choices(record: Any) -> dict[str, list[Any]]:
    """The types and plugins found on the customer's timeline, for the filters."""
    condition = _for(record)
    types = db.session.scalars(select(Activity.type).where(condition).distinct()
                               .order_by(Activity.type)).all()
    plugins = db.session.scalars(select(Activity.plugin).where(condition).distinct()
                                 .order_by(Activity.plugin)).all()
    labels = plugin_labels()
    return {"types": list(types), "plugins": [(p, labels.get(p, p)) for p in plugins]}


def plugin_labels() -> dict[str, str]:
    ext = current_app.extensions["trellis"]
    return {p.name: p.label for p in ext.plugins.loaded()}


def page_context(record: Any) -> dict[str, Any]:
    """What the customer page's timeline section needs (from ``tl_*`` arguments)."""
    try:
        args = parse_args(request.args, prefix="tl_")
        errors: dict[str, Any] = {}
    except ValidationError as exc:
        args, errors = parse_args({}), exc.messages
    current = {k: request.args[f"tl_{k}"] for k in ("type", "plugin", "since", "until")
               if request.args.get(f"tl_{k}")}
    return {"timeline": timeline(record, args), "timeline_choices": choices(record),
            "timeline_args": current, "timeline_errors": errors,
            "timeline_paged": bool(args.get("before"))}


class CustomerApi(BaseApi):
    """``GET /api/v1/customer/<contact|account>/<id>/timeline``: the merged timeline."""

    resource_name = "customer"
    class_permission_name = "core.Activity"
    method_permission_name = {"timeline_api": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Customer 360"

    @expose("/<model>/<int:pk>/timeline", methods=["GET"])
    @protect()
    @safe
    @permission_name("timeline_api")
    def timeline_api(self, model: str, pk: int) -> Any:
        """A customer's activities from every plugin, newest first, paged by key.
        ---
        get:
          parameters:
          - {in: path, name: model, required: true, schema: {type: string, enum: [contact, account]}}
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: type, schema: {type: string}}
          - {in: query, name: plugin, schema: {type: string}}
          - {in: query, name: since, schema: {type: string, format: date}}
          - {in: query, name: until, schema: {type: string, format: date}}
          - {in: query, name: before, schema: {type: string},
             description: "the 'next' value of the previous page"}
          - {in: query, name: limit, schema: {type: integer, maximum: 100}}
          responses:
            200: {description: "result: [{id, occurred_at, type, subject, plugin, user}], next"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        kind = MODELS.get(model)
        if kind is None or not self.appbuilder.sm.has_access(
                "can_read", f"core.{kind.__name__}"):
            return self.response_404()
        record = db.session.get(kind, pk)
        if record is None or not rules.may_see(record):
            return self.response_404()
        try:
            args = parse_args(request.args)
        except ValidationError as exc:
            return self.response_400(message=exc.messages)
        page = timeline(record, args)
        return self.response(200, result=page["entries"], next=page["next"])
