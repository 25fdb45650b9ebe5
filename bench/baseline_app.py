"""The baseline: a bare Flask app serving the same contact pages with SQLAlchemy Core.

It answers the same URLs as Trellis' generated ``ContactApi`` (the rison ``q``
with ``page``, ``page_size``, ``order_column``/``order_direction`` and ``eq``
filters; ``/<id>`` for one record) with the same rows and columns in the same
order, and the same bounded count (``count`` is exact up to ``COUNT_CAP``,
then ``COUNT_CAP``, with ``count_capped``).  Deliberately not included: login
and permissions, the metadata keys FAB adds (``label_columns``,
``list_columns``, ``description_columns``, ``order_columns``, ``list_title``).

For the suite (suite_http.py) it also creates a contact (``POST
/api/v1/contact/``: the same required fields, an e-mail check, one INSERT) and
ingests behaviour events (``POST /api/v1/ingest/events``: the same checks of
type and identity, contacts named by id must exist, one multi-row INSERT of
the events and one of the timeline activities of known contacts, linked back),
without Trellis' audit, domain events, record rules or visitor stitching.

Served by gunicorn: ``gunicorn 'baseline_app:create_app()'`` with
``BENCH_DATABASE_URL`` set.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

import prison
import sqlalchemy as sa
from flask import Flask, jsonify, request

COLUMNS = ["id", "first_name", "last_name", "email", "phone", "title", "national_id", "account_id",
           "owner_id"]  # national_id: stored encrypted, NULL in the generated data
FILTERABLE = {"first_name", "last_name", "email", "phone", "account_id", "owner_id"}
ORDERABLE = {"id", *FILTERABLE}
PAGE_SIZE, MAX_PAGE_SIZE = 25, 100
WRITABLE = ["first_name", "last_name", "email", "phone", "title", "account_id"]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EVENT_TYPES = {"page_view", "product_view", "add_to_cart", "form_submit", "purchase",
               "identify"}


def create_app(url: str | None = None, count_cap: int | None = None) -> Flask:
    app = Flask("baseline")
    app.json.sort_keys = False
    # The same engine options as Trellis (config.py), so the pool behaves alike.
    engine = sa.create_engine(url or os.environ["BENCH_DATABASE_URL"], pool_pre_ping=True)
    cap = count_cap if count_cap is not None else int(os.environ.get("TRELLIS_COUNT_CAP", 10000))
    contact = sa.Table("trellis_contact", sa.MetaData(), autoload_with=engine)
    selected = [contact.c[name] for name in COLUMNS]
    web_event = sa.Table("integrations_web_event", sa.MetaData(),
                         sa.Column("properties", sa.JSON), autoload_with=engine)
    activity = sa.Table("trellis_activity", sa.MetaData(), sa.Column("payload", sa.JSON),
                        autoload_with=engine)

    def bad(message: str):
        return jsonify(message=message), 400

    @app.get("/api/v1/contact/")
    def contact_list():
        try:
            args = prison.loads(request.args.get("q", "()")) or {}
        except Exception:  # noqa: BLE001
            return bad("Not a valid rison argument")
        page = int(args.get("page", 0) or 0)
        page_size = min(int(args.get("page_size", PAGE_SIZE) or PAGE_SIZE), MAX_PAGE_SIZE)
        where = []
        for flt in args.get("filters", []):
            if flt.get("col") not in FILTERABLE or flt.get("opr") != "eq":
                return bad(f"Unsupported filter {flt!r}")
            where.append(contact.c[flt["col"]] == flt.get("value"))
        query = sa.select(*selected).where(*where)
        order = args.get("order_column")
        if order:
            if order not in ORDERABLE:
                return bad(f"Invalid order by column: {order}")
            direction = sa.asc if args.get("order_direction") == "asc" else sa.desc
            query = query.order_by(direction(contact.c[order]))
            if order != "id":
                query = query.order_by(direction(contact.c.id))
        else:  # as TrellisModelApi.base_order: a stable default order
            query = query.order_by(contact.c.id)
        query = query.limit(page_size).offset(page * page_size if page else None)
        limited = sa.select(sa.literal(1)).select_from(contact).where(*where).limit(cap + 1)
        counted = sa.select(sa.func.count()).select_from(limited.subquery())
        with engine.connect() as conn:
            count = conn.execute(counted).scalar_one()
            rows = conn.execute(query).mappings().all()
        result = [dict(row) for row in rows]
        return jsonify(result=result, ids=[row["id"] for row in result],
                       count=min(count, cap), count_capped=count > cap)

    @app.get("/api/v1/contact/<int:pk>")
    def contact_get(pk: int):
        with engine.connect() as conn:
            row = conn.execute(sa.select(*selected).where(contact.c.id == pk)).mappings().first()
        if row is None:
            return jsonify(message="Not found"), 404
        return jsonify(id=pk, result=dict(row))

    @app.post("/api/v1/contact/")
    def contact_create():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return bad("Request is not JSON")
        errors = {}
        for name in ("first_name", "last_name"):
            if not str(body.get(name) or "").strip():
                errors[name] = ["Missing data for required field."]
        unknown = set(body) - set(WRITABLE)
        for name in unknown:
            errors[name] = ["Unknown field."]
        email = body.get("email")
        if email and not EMAIL.match(email):
            errors["email"] = ["Not a valid e-mail address."]
        if errors:
            return jsonify(message=errors), 400
        now = datetime.now(timezone.utc)
        values = {k: body.get(k) for k in WRITABLE if k in body}
        if values.get("email"):
            values["email"] = values["email"].strip().lower()
        with engine.begin() as conn:
            pk = conn.execute(sa.insert(contact).values(
                **values, created_on=now, updated_on=now).returning(contact.c.id)).scalar_one()
        return jsonify(id=pk, result=values), 201

    @app.post("/api/v1/ingest/events")
    def ingest_events():
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return bad("Send {\"events\": [...]}.")
        now = datetime.now(timezone.utc)
        good, errors = [], {}
        for index, e in enumerate(body["events"]):
            if not isinstance(e, dict) or e.get("type") not in EVENT_TYPES:
                errors[str(index)] = {"type": ["Must be one of the event types."]}
            elif not (e.get("visitor_id") or e.get("contact_id") or e.get("email")):
                errors[str(index)] = {"visitor_id": ["Give visitor_id, contact_id or email."]}
            else:
                good.append(e)
        named = {e["contact_id"] for e in good if e.get("contact_id")}
        with engine.begin() as conn:
            known = set(conn.execute(sa.select(contact.c.id).where(
                contact.c.id.in_(named))).scalars()) if named else set()
            good = [e for e in good if not e.get("contact_id") or e["contact_id"] in known]
            rows = [{"visitor_id": e.get("visitor_id"), "session_id": e.get("session_id"),
                     "type": e["type"], "url": e.get("url"),
                     "path": urlsplit(e["url"]).path or "/" if e.get("url") else None,
                     "title": e.get("title"), "referrer": e.get("referrer"),
                     "product": e.get("product"), "value": e.get("value"),
                     "currency": e.get("currency"), "properties": e.get("properties"),
                     "occurred_at": e.get("occurred_at") or now,
                     "contact_id": e.get("contact_id")} for e in good]
            ids = list(conn.execute(web_event.insert().returning(
                web_event.c.id, sort_by_parameter_order=True), rows).scalars()) if rows else []
            linked = [(e, i) for e, i in zip(good, ids) if e.get("contact_id")]
            if linked:
                acts = list(conn.execute(activity.insert().returning(
                    activity.c.id, sort_by_parameter_order=True), [
                    {"type": f"web.{e['type']}",
                     "subject": (e.get("title") or "Page view")[:255],
                     "occurred_at": e.get("occurred_at") or now, "contact_id": e["contact_id"],
                     "plugin": "integrations",
                     "payload": {"web_event_id": i, "url": e.get("url")}}
                    for e, i in linked]).scalars())
                conn.execute(web_event.update().where(web_event.c.id == sa.bindparam("wid"))
                             .values(activity_id=sa.bindparam("aid")),
                             [{"wid": i, "aid": a} for (_, i), a in zip(linked, acts)])
        return jsonify(accepted=len(good), errors=errors)

    @app.get("/health")
    def health():
        return "ok"

    return app
