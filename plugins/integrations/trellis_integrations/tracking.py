"""Behaviour events from websites and apps: ingestion, tracking snippet, stitching.

Two ways in, one :func:`ingest`:

* ``POST /api/v1/ingest/events`` with an API key (``Bearer trl_…``): a batch of
  up to :data:`MAX_BATCH` events from a server or an app (:class:`IngestApi`).
* ``POST /integrations/t/collect`` from the first-party snippet
  ``/integrations/t/<site key>.js`` in a browser: public, rate-limited,
  size-limited and accepted only from the site's allowed origins (CORS).

Each event is validated on its own (``errors`` per index, the others are
kept), stored as a :class:`~trellis_integrations.models.WebEvent` (what the
analytics read) and, when the visitor is a known contact, put on the
contact's timeline as a core ``Activity`` (``plugin="integrations"``, type
``web.page_view``, ``web.product_view``, ``web.add_to_cart``,
``web.form_submit``, ``web.purchase``).  Every accepted event fires the core
event of the same name (``web.page_view`` …) after the commit, so journeys
and lead scoring can react.

Stitching: an ``identify`` or a ``form_submit`` carrying an e-mail ties the
anonymous visitor id to the contact with that e-mail (created if there is
none) in :class:`~trellis_integrations.models.WebVisitor`; the visitor's
earlier anonymous events get the contact and join its timeline (one select,
one multi-row insert of activities, one ``UPDATE``), and ``web.identified``
fires.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import bindparam, func, insert, select, update

from trellis.db import db, utcnow
from trellis.events import emit
from trellis.models import Activity, Contact

from trellis_integrations.models import TrackingSite, WebEvent, WebVisitor

log = logging.getLogger(__name__)

PLUGIN = "integrations"
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "form_submit", "purchase",
               "identify")
#: Types that tie the visitor to a contact by its e-mail (creating one if needed).
IDENTIFYING = ("identify", "form_submit")
MAX_BATCH = 500
#: Largest body the public collect endpoint takes.
MAX_COLLECT_BYTES = 16 * 1024
HERE = Path(__file__).resolve().parent


class EventSchema(Schema):
    """One behaviour event (the ingestion API and the snippet send the same)."""

    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    visitor_id = fields.String(validate=validate.Length(min=1, max=64))
    session_id = fields.String(validate=validate.Length(max=64), allow_none=True)
    contact_id = fields.Integer(allow_none=True)
    email = fields.Email(allow_none=True, error_messages={"invalid": "Not a valid e-mail "
                                                                     "address."})
    first_name = fields.String(validate=validate.Length(max=100), allow_none=True)
    last_name = fields.String(validate=validate.Length(max=100), allow_none=True)
    url = fields.String(validate=validate.Length(max=1000), allow_none=True)
    title = fields.String(validate=validate.Length(max=255), allow_none=True)
    referrer = fields.String(validate=validate.Length(max=1000), allow_none=True)
    product = fields.String(validate=validate.Length(max=200), allow_none=True)
    value = fields.Decimal(places=2, allow_none=True, as_string=False)
    currency = fields.String(validate=validate.Regexp(r"^[A-Z]{3}$",
                                                      error="Use an ISO 4217 code, e.g. EUR."),
                             allow_none=True)
    occurred_at = fields.AwareDateTime(default_timezone=None, allow_none=True)
    properties = fields.Dict(keys=fields.String(), allow_none=True)

    @validates_schema
    def _who(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("visitor_id") or data.get("contact_id") or data.get("email")):
            raise ValidationError("Give visitor_id, contact_id or email.", "visitor_id")
        if data["type"] in ("product_view", "add_to_cart") and not data.get("product"):
            raise ValidationError("Required for this event type.", "product")
        if data["type"] == "identify" and not (data.get("email") or data.get("contact_id")):
            raise ValidationError("An identify needs the e-mail (or contact_id).", "email")


def _subject(e: dict[str, Any]) -> str:
    kind = e["type"]
    if kind in ("product_view", "add_to_cart"):
        label = "Viewed" if kind == "product_view" else "Added to cart:"
        return f"{label} {e.get('product')}"
    if kind == "purchase":
        amount = f" {e['value']} {e.get('currency') or ''}".rstrip() if e.get("value") else ""
        return f"Purchase{amount}"
    if kind == "form_submit":
        form = (e.get("properties") or {}).get("form") or _path(e.get("url")) or "a form"
        return f"Submitted {form}"[:255]
    if kind == "identify":
        return "Identified on the website"
    return (e.get("title") or _path(e.get("url")) or "Page view")[:255]


def _path(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return (parts.path or "/")[:500]


def _new_contact(e: dict[str, Any]) -> Contact:
    local = e["email"].split("@", 1)[0]
    first = (e.get("first_name") or (e.get("properties") or {}).get("first_name")
             or local.split(".")[0].title() or local)[:100]
    last = (e.get("last_name") or (e.get("properties") or {}).get("last_name")
            or (local.split(".")[1].title() if "." in local else "(website)"))[:100]
    return Contact(first_name=first, last_name=last, email=e["email"])


def _activity_row(e: dict[str, Any], contact_id: int, web_event_id: int) -> dict[str, Any]:
    payload = {"web_event_id": web_event_id, "url": e.get("url"), "product": e.get("product"),
               "value": str(e["value"]) if e.get("value") is not None else None,
               "currency": e.get("currency"), "visitor_id": e.get("visitor_id")}
    return {"type": f"web.{e['type']}", "subject": _subject(e), "occurred_at": e["occurred_at"],
            "contact_id": contact_id, "plugin": PLUGIN,
            "payload": {k: v for k, v in payload.items() if v is not None}}


def ingest(events: list[Any], *, site: TrackingSite | None = None,
           source: str = "api") -> dict[str, Any]:
    """Validate and store a batch of events; commits.  Returns ``{"accepted": n,
    "errors": {"<index>": {field: [messages]}}, "contacts": {"<index>": id}}``.

    Runs as the system (``source="job"``, keeping the API user's id for the
    audit log): contacts created by a form submit have no owner, as from any
    integration, and record rules do not hide contacts from the matching."""
    from trellis.context import acting_as, current_actor

    actor = current_actor()
    with acting_as(actor.user_id if actor else None, actor.username if actor else None, "job"):
        return _ingest(events, site, source)


def _ingest(events: list[Any], site: TrackingSite | None, source: str) -> dict[str, Any]:
    schema = EventSchema()
    good: list[tuple[int, dict[str, Any]]] = []
    errors: dict[str, Any] = {}
    for index, raw in enumerate(events):
        if not isinstance(raw, dict):
            errors[str(index)] = {"_schema": ["An event is a JSON object."]}
            continue
        try:
            data = schema.load(raw)
        except ValidationError as exc:
            errors[str(index)] = exc.messages
            continue
        data["email"] = (data.get("email") or "").strip().lower() or None
        data["occurred_at"] = data.get("occurred_at") or utcnow()
        good.append((index, data))
    site_id = site.id if site is not None else None
    # contacts named by id must exist
    named = {e["contact_id"] for _, e in good if e.get("contact_id")}
    known = set(db.session.scalars(select(Contact.id).where(Contact.id.in_(named)))) \
        if named else set()
    for index, e in list(good):
        if e.get("contact_id") and e["contact_id"] not in known:
            errors[str(index)] = {"contact_id": [f"No contact with id {e['contact_id']}."]}
            good.remove((index, e))
    # contacts by e-mail, one query; identify / form submit create missing ones
    emails = sorted({e["email"] for _, e in good if e.get("email") and not e.get("contact_id")})
    by_email: dict[str, int] = {}
    if emails:
        for contact_id, email in db.session.execute(
                select(Contact.id, func.lower(Contact.email))
                .where(func.lower(Contact.email).in_(emails)).order_by(Contact.id)):
            by_email.setdefault(email, contact_id)
    for _, e in good:
        if e.get("email") and not e.get("contact_id") and e["email"] not in by_email \
                and e["type"] in IDENTIFYING:
            contact = _new_contact(e)
            db.session.add(contact)
            db.session.flush()
            by_email[e["email"]] = contact.id
    # visitors already tied to a contact
    visitors = sorted({e["visitor_id"] for _, e in good if e.get("visitor_id")})
    by_visitor: dict[str, int] = {}
    if visitors:
        stmt = select(WebVisitor.visitor_id, WebVisitor.contact_id).where(
            WebVisitor.visitor_id.in_(visitors), WebVisitor.contact_id.is_not(None))
        stmt = stmt.where(WebVisitor.site_id == site_id) if site_id is not None else stmt
        by_visitor = dict(db.session.execute(stmt).all())
    for _, e in good:
        e["contact"] = e.get("contact_id") or (by_email.get(e["email"]) if e.get("email")
                                               else None) or by_visitor.get(e.get("visitor_id"))
    identified: list[tuple[str, int]] = []
    for _, e in good:
        if e["type"] in IDENTIFYING and e.get("visitor_id") and e["contact"] and site_id:
            identified.append((e["visitor_id"], e["contact"]))
    # the events, one multi-row insert
    rows = [{"site_id": site_id, "visitor_id": e.get("visitor_id"),
             "session_id": e.get("session_id"), "type": e["type"], "url": e.get("url"),
             "path": _path(e.get("url")), "title": e.get("title"), "referrer": e.get("referrer"),
             "product": e.get("product"), "value": e.get("value"), "currency": e.get("currency"),
             "properties": {**(e.get("properties") or {}), **({"source": source}
                                                              if source != "api" else {})}
             or None,
             "occurred_at": e["occurred_at"], "contact_id": e["contact"]} for _, e in good]
    ids: list[int] = []
    if rows:
        # render_nulls: every row has the same columns, so the batch is one INSERT
        # (the ORM leaves out None values, and rows of other columns break the batch:
        # one statement a row for a mix of known and anonymous visitors)
        ids = [i for (i,) in db.session.execute(
            insert(WebEvent).returning(WebEvent.id, sort_by_parameter_order=True), rows,
            execution_options={"render_nulls": True})]
    _timeline([(e, i) for (_, e), i in zip(good, ids) if e["contact"]])
    stitched = {}
    for visitor_id, contact_id in dict(identified).items():
        stitched[visitor_id] = stitch(site_id, visitor_id, contact_id)
    db.session.flush()
    for (_, e), web_event_id in zip(good, ids):
        emit(f"web.{e['type']}", {"contact_id": e["contact"], "visitor_id": e.get("visitor_id"),
                                  "site_id": site_id, "url": e.get("url"),
                                  "product": e.get("product"),
                                  "value": str(e["value"]) if e.get("value") is not None
                                  else None, "web_event_id": web_event_id}, plugin=PLUGIN)
    for visitor_id, count in stitched.items():
        emit("web.identified", {"visitor_id": visitor_id, "site_id": site_id,
                                "contact_id": dict(identified)[visitor_id],
                                "stitched_events": count}, plugin=PLUGIN)
    db.session.commit()
    return {"accepted": len(good), "errors": errors,
            "contacts": {str(index): e["contact"] for index, e in good if e["contact"]}}


def _timeline(pairs: list[tuple[dict[str, Any], int]]) -> None:
    """Activities for events of known contacts, linked back to their web events."""
    if not pairs:
        return
    activity_ids = [i for (i,) in db.session.execute(
        insert(Activity).returning(Activity.id, sort_by_parameter_order=True),
        [_activity_row(e, e["contact"], web_id) for e, web_id in pairs])]
    db.session.execute(
        update(WebEvent.__table__).where(WebEvent.__table__.c.id == bindparam("wid"))
        .values(activity_id=bindparam("aid")),
        [{"wid": web_id, "aid": aid} for (_, web_id), aid in zip(pairs, activity_ids)])


def stitch(site_id: int | None, visitor_id: str, contact_id: int) -> int:
    """Tie ``visitor_id`` to ``contact_id`` and move its anonymous events onto the
    contact's timeline; returns how many events were stitched."""
    visitor = db.session.scalar(select(WebVisitor).where(WebVisitor.site_id == site_id,
                                                         WebVisitor.visitor_id == visitor_id))
    if visitor is None:
        visitor = WebVisitor(site_id=site_id, visitor_id=visitor_id)
        db.session.add(visitor)
    visitor.contact_id, visitor.identified_at = contact_id, utcnow()
    anonymous = db.session.execute(
        select(WebEvent.id, WebEvent.type, WebEvent.url, WebEvent.title, WebEvent.product,
               WebEvent.value, WebEvent.currency, WebEvent.occurred_at, WebEvent.properties,
               WebEvent.visitor_id)
        .where(WebEvent.site_id == site_id, WebEvent.visitor_id == visitor_id,
               WebEvent.contact_id.is_(None)).order_by(WebEvent.id)).mappings().all()
    if not anonymous:
        return 0
    pairs = [({**dict(row), "contact": contact_id}, row["id"]) for row in anonymous]
    db.session.execute(update(WebEvent).where(WebEvent.id.in_([r["id"] for r in anonymous]))
                       .values(contact_id=contact_id))
    _timeline(pairs)
    return len(anonymous)


# ------------------------------------------------------------------ the ingestion API


class IngestApi(BaseApi):
    """``POST /api/v1/ingest/events``: a batch of behaviour events (API key or JWT)."""

    resource_name = "ingest"
    class_permission_name = "Ingest"
    method_permission_name = {"events": "write"}
    base_permissions = ["can_write"]
    allow_browser_login = True
    openapi_spec_tag = "Behaviour events"

    @expose("/events", methods=["POST"])
    @protect()
    @safe
    @permission_name("events")
    def events(self) -> Any:
        """Ingest a batch of behaviour events.
        ---
        post:
          description: >-
            Body {"events": [{"type": "page_view", "visitor_id": "...", "url": "..."}],
            "site": "<site key, optional>"}.  Types: page_view, product_view,
            add_to_cart, form_submit, purchase, identify.  Each event needs a
            visitor_id, contact_id or email.  Bad events are reported by index and
            left out; the others are stored.
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            200:
              description: '{"accepted": n, "errors": {"<index>": {field: [messages]}}}'
            400:
              $ref: '#/components/responses/400'
        """
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return self.response_400(message={"events": ["Send {\"events\": [...]}."]})
        if len(body["events"]) > MAX_BATCH:
            return self.response_400(message={"events": [
                f"At most {MAX_BATCH} events per request."]})
        site = None
        if body.get("site"):
            site = db.session.scalar(select(TrackingSite).where(
                TrackingSite.site_key == str(body["site"])))
            if site is None:
                return self.response_400(message={"site": ["No site with this key."]})
        result = ingest(body["events"], site=site, source="api")
        return self.response(200, **result)


# ------------------------------------------------------------------ the public snippet


collect = Blueprint("tracking", __name__, url_prefix="/integrations/t")


def _origins(site: TrackingSite) -> set[str]:
    return {o.strip().rstrip("/").lower() for o in
            (site.allowed_origins or "").replace("\n", ",").split(",") if o.strip()}


def _cors(response: Response, origin: str | None) -> Response:
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Vary"] = "Origin"
    return response


def new_site_key() -> str:
    return "ts_" + secrets.token_urlsafe(18)


@collect.route("/<site_key>.js")
def snippet(site_key: str) -> Any:
    """The tracking script for one site (served by Trellis: no third-party host)."""
    site = db.session.scalar(select(TrackingSite).where(TrackingSite.site_key == site_key,
                                                        TrackingSite.active.is_(True)))
    if site is None:
        return Response("/* unknown site */", status=404, mimetype="application/javascript")
    source = (HERE / "static" / "tracker.js").read_text(encoding="utf-8")
    body = source.replace("__SITE_KEY__", json.dumps(site.site_key)[1:-1])
    response = Response(body, mimetype="application/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@collect.route("/collect", methods=["POST", "OPTIONS"])
def collect_events() -> Any:
    """Events from the snippet: ``{"site": key, "events": [...]}`` (JSON, sent as
    ``text/plain`` by ``navigator.sendBeacon``)."""
    origin = request.headers.get("Origin")
    if (request.content_length or 0) > MAX_COLLECT_BYTES:
        return _cors(jsonify(message="Too large."), origin), 413
    raw = request.get_data(cache=False, as_text=False)[:MAX_COLLECT_BYTES + 1]
    if len(raw) > MAX_COLLECT_BYTES:
        return _cors(jsonify(message="Too large."), origin), 413
    if request.method == "OPTIONS":
        return _cors(Response(status=204), origin)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return _cors(jsonify(message="Send JSON."), origin), 400
    if not isinstance(body, dict):
        return _cors(jsonify(message="Send a JSON object."), origin), 400
    site = db.session.scalar(select(TrackingSite).where(
        TrackingSite.site_key == str(body.get("site") or ""), TrackingSite.active.is_(True)))
    if site is None:
        return _cors(jsonify(message="Unknown site."), origin), 404
    if not origin or origin.rstrip("/").lower() not in _origins(site):
        return jsonify(message="This origin may not send events for this site."), 403
    events = body.get("events") if isinstance(body.get("events"), list) else [body]
    if len(events) > 50:
        return _cors(jsonify(message="At most 50 events per request."), origin), 400
    for event in events:  # a browser cannot name a contact by id
        if isinstance(event, dict):
            event.pop("contact_id", None)
    result = ingest(events, site=site, source="web")
    return _cors(jsonify(accepted=result["accepted"], errors=result["errors"]), origin)


def limit_collect(app: Any) -> None:
    """Rate-limit the public endpoints per client address (``trellis_app_ready``)."""
    limiter = getattr(app.appbuilder.sm, "limiter", None)
    if limiter is not None:
        limiter.limit(app.config.get("INTEGRATIONS_COLLECT_RATE_LIMIT", "600 per minute"))(
            collect)
