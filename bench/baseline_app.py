"""The baseline: a bare Flask app serving the same contact pages with SQLAlchemy Core.

It answers the same URLs as Trellis' generated ``ContactApi`` (the rison ``q``
with ``page``, ``page_size``, ``order_column``/``order_direction`` and ``eq``
filters; ``/<id>`` for one record) with the same rows and columns in the same
order, and the same bounded count (``count`` is exact up to ``COUNT_CAP``,
then ``COUNT_CAP``, with ``count_capped``).  Deliberately not included: login
and permissions, the metadata keys FAB adds (``label_columns``,
``list_columns``, ``description_columns``, ``order_columns``, ``list_title``).

Served by gunicorn: ``gunicorn 'baseline_app:create_app()'`` with
``BENCH_DATABASE_URL`` set.
"""

from __future__ import annotations

import os

import prison
import sqlalchemy as sa
from flask import Flask, jsonify, request

COLUMNS = ["id", "first_name", "last_name", "email", "phone", "title", "account_id", "owner_id"]
FILTERABLE = {"first_name", "last_name", "email", "phone", "account_id", "owner_id"}
ORDERABLE = {"id", *FILTERABLE}
PAGE_SIZE, MAX_PAGE_SIZE = 25, 100


def create_app(url: str | None = None, count_cap: int | None = None) -> Flask:
    app = Flask("baseline")
    app.json.sort_keys = False
    # The same engine options as Trellis (config.py), so the pool behaves alike.
    engine = sa.create_engine(url or os.environ["BENCH_DATABASE_URL"], pool_pre_ping=True)
    cap = count_cap if count_cap is not None else int(os.environ.get("TRELLIS_COUNT_CAP", 10000))
    contact = sa.Table("trellis_contact", sa.MetaData(), autoload_with=engine)
    selected = [contact.c[name] for name in COLUMNS]

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

    @app.get("/health")
    def health():
        return "ok"

    return app
