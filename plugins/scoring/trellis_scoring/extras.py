"""Scores beyond the weighted models, recomputed with them by the full job:
RFM quintiles and segments, product associations ("bought X also buys Y"),
churn risk and lifetime value (:mod:`trellis_scoring.churn`).

Both read every plugin's purchase lines (:mod:`trellis_scoring.purchase_data`:
``trellis.purchases.lines()``, materialised once by the full recompute) and
are computed in SQL on SQLite and PostgreSQL alike: RFM with one ``INSERT …
SELECT`` (``NTILE`` windows over per-customer aggregates of the orders), the
associations from a temporary basket table (distinct order × product), pruned
to products bought in at least ``min_orders`` orders before the self-join
(a pair cannot be more frequent than its rarer product).  They are relative
to all customers, so only the full recompute (nightly) refreshes them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import (Float, Integer, and_, case, cast, column, delete, func, insert, literal,
                        select, table, text, union_all)

from trellis import purchases
from trellis.db import db, utcnow
from trellis.sqlfuncs import days_between
from trellis_scoring import purchase_data
from trellis_scoring.sync import fill_from, replace_rows
from trellis_scoring.models import Association, CustomerRfm

#: RFM segments, the first matching rule wins: (segment, r from, r to, f from, f to, m from).
#: Quintiles are 1–5, 5 the best (most recent, most orders, most spent).
SEGMENTS: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("champions", 4, 5, 4, 5, 4),
    ("loyal", 3, 5, 4, 5, 1),
    ("new customers", 5, 5, 1, 1, 1),
    ("potential loyalists", 4, 5, 2, 3, 1),
    ("promising", 4, 4, 1, 1, 1),
    ("need attention", 3, 3, 2, 3, 1),
    ("about to sleep", 3, 3, 1, 1, 1),
    ("cannot lose them", 1, 2, 5, 5, 1),
    ("at risk", 1, 2, 3, 4, 1),
    ("hibernating", 2, 2, 1, 2, 1),
    ("lost", 1, 1, 1, 2, 1),
)


def segment_of(r: int, f: int, m: int) -> str:
    """The named segment of quintiles ``r``, ``f``, ``m`` (same rules as the SQL)."""
    for name, r0, r1, f0, f1, m0 in SEGMENTS:
        if r0 <= r <= r1 and f0 <= f <= f1 and m >= m0:
            return name
    return "others"


def _segment_case(r: Any, f: Any, m: Any) -> Any:
    return case(*[(and_(r.between(r0, r1), f.between(f0, f1), m >= m0), literal(name))
                  for name, r0, r1, f0, f1, m0 in SEGMENTS], else_=literal("others"))


def rfm_select(now: Any) -> Any:
    """``select(contact_id, recency_days, frequency, monetary, r, f, m, segment,
    computed_at)``: quintiles by ``NTILE(5)`` over all customers who bought
    (ties broken by contact id, so equal values may straddle two quintiles)."""
    orders = purchase_data.orders().subquery()
    per = (select(orders.c.contact_id.label("contact_id"),
                  func.max(orders.c.ordered_at).label("last_at"),
                  func.count(func.distinct(orders.c.order_id)).label("orders"),
                  func.coalesce(func.sum(orders.c.amount), 0).label("spent"))
           .where(orders.c.contact_id.is_not(None))
           .group_by(orders.c.contact_id)).subquery()
    ranked = select(
        per.c.contact_id, days_between(per.c.last_at, now).label("recency_days"),
        per.c.orders, per.c.spent,
        func.ntile(5).over(order_by=(per.c.last_at, per.c.contact_id)).label("r"),
        func.ntile(5).over(order_by=(per.c.orders, per.c.contact_id)).label("f"),
        func.ntile(5).over(order_by=(per.c.spent, per.c.contact_id)).label("m"),
    ).subquery()
    return select(ranked.c.contact_id, ranked.c.recency_days, ranked.c.orders,
                  ranked.c.spent, ranked.c.r, ranked.c.f, ranked.c.m,
                  _segment_case(ranked.c.r, ranked.c.f, ranked.c.m),
                  literal(now, CustomerRfm.__table__.c.computed_at.type))


def recompute_rfm(session: Any) -> int:
    """Replace every customer's RFM row (one ``INSERT … SELECT`` into a staging
    table, then rows updated in place, new ones inserted, gone ones deleted)."""
    t = CustomerRfm.__table__
    columns = ["contact_id", "recency_days", "frequency", "monetary", "r", "f", "m", "segment",
               "computed_at"]
    replace_rows(session, t, "contact_id", columns, fill_from(rfm_select(utcnow()), columns))
    return session.scalar(select(func.count()).select_from(t))


def _baskets(session: Any, min_orders: int) -> tuple[Any, int]:
    """A temporary table ``(order_id, product_id)``: the distinct products of
    every order, only products in at least ``min_orders`` orders; and N, the
    number of orders with products (before pruning)."""
    lines = purchase_data.lines().subquery()
    name = f"scoring_baskets_{uuid.uuid4().hex[:12]}"
    conn = session.connection()
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} (order_id INTEGER, product_id INTEGER)"))
    baskets = table(name, column("order_id", Integer), column("product_id", Integer))
    conn.execute(insert(baskets).from_select(
        ["order_id", "product_id"],
        select(lines.c.order_id, lines.c.product_id)
        .where(lines.c.order_id.is_not(None), lines.c.product_id.is_not(None)).distinct()))
    total = session.scalar(select(func.count(func.distinct(baskets.c.order_id))))
    rare = (select(baskets.c.product_id).group_by(baskets.c.product_id)
            .having(func.count() < min_orders))
    conn.execute(baskets.delete().where(baskets.c.product_id.in_(rare)))
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {name}"))
    return baskets, int(total or 0)


def association_select(baskets: Any, total: int, min_orders: int, now: Any) -> Any:
    """Every ordered product pair (X, Y) bought in at least ``min_orders`` of the
    same orders: ``support = n(X∧Y) / N``, ``confidence = n(X∧Y) / n(X)``,
    ``lift = confidence / (n(Y) / N)``, N the orders with products; from a
    basket table (:func:`_baskets`)."""
    lines = purchase_data.lines().subquery()
    names = (select(lines.c.product_id.label("product_id"),
                    func.max(lines.c.product_name).label("name"))
             .where(lines.c.order_id.is_not(None), lines.c.product_id.is_not(None))
             .group_by(lines.c.product_id)).subquery()
    counts = (select(baskets.c.product_id.label("product_id"), func.count().label("n"))
              .group_by(baskets.c.product_id)).subquery()
    items = (select(counts.c.product_id, counts.c.n, names.c.name)
             .join(names, names.c.product_id == counts.c.product_id)).subquery()
    a, b = baskets.alias("a"), baskets.alias("b")
    # n(X∧Y) = n(Y∧X): count each unordered pair once (x < y), then both ways
    half = (select(a.c.product_id.label("x"), b.c.product_id.label("y"),
                   func.count().label("nxy"))
            .join(b, and_(a.c.order_id == b.c.order_id, a.c.product_id < b.c.product_id))
            .group_by(a.c.product_id, b.c.product_id)
            .having(func.count() >= min_orders)).subquery()
    pairs = union_all(select(half.c.x, half.c.y, half.c.nxy),
                      select(half.c.y, half.c.x, half.c.nxy)).subquery()
    ix, iy = items.alias("ix"), items.alias("iy")
    nxy = cast(pairs.c.nxy, Float)
    n = literal(total, Integer)
    return (select(pairs.c.x, pairs.c.y, ix.c.name, iy.c.name, pairs.c.nxy,
                   nxy / n, nxy / ix.c.n, nxy * n / (cast(ix.c.n, Float) * iy.c.n),
                   literal(now, Association.__table__.c.computed_at.type))
            .join(ix, ix.c.product_id == pairs.c.x)
            .join(iy, iy.c.product_id == pairs.c.y))


def recompute_associations(session: Any, min_orders: int) -> int:
    """Replace every product association (from a pruned basket table)."""
    t = Association.__table__
    session.execute(delete(t))
    baskets, total = _baskets(session, min_orders)
    if total:
        session.execute(insert(t).from_select(
            ["antecedent_id", "consequent_id", "antecedent_name", "consequent_name", "orders",
             "support", "confidence", "lift", "computed_at"],
            association_select(baskets, total, min_orders, utcnow())))
    session.connection().execute(text(f"DROP TABLE {baskets.name}"))
    return session.scalar(select(func.count()).select_from(t))


def recompute_extras(session: Any, contact_ids: list[int] | None = None) -> dict[str, Any]:
    """Recompute the extra scores; a no-op for incremental updates (``contact_ids``)."""
    if contact_ids is not None:
        return {}
    from trellis.settings import get_settings

    from trellis_scoring.churn import recompute_churn_and_clv

    settings = get_settings("scoring")
    seconds: dict[str, float] = {}
    out: dict[str, Any] = {}

    def timed(name: str, fn: Any) -> Any:
        started = time.perf_counter()
        got = fn()
        seconds[name] = round(time.perf_counter() - started, 3)
        return got

    out["rfm"] = timed("rfm", lambda: recompute_rfm(session))
    out["associations"] = timed("associations", lambda: recompute_associations(
        session, settings["association_min_orders"]))
    out.update(timed("churn_and_clv", lambda: recompute_churn_and_clv(
        session, settings["churn_horizon_days"], settings["clv_discount_rate"])))
    out["seconds"] = seconds
    return out


def recommendations(contact_id: int, limit: int = 5) -> list[dict[str, Any]]:
    """Products the contact has not bought that customers who bought theirs
    also buy (lift above 1), best lift first."""
    lines = purchases.lines().subquery()
    mine = select(lines.c.product_id).where(lines.c.contact_id == contact_id,
                                            lines.c.product_id.is_not(None))
    a = Association
    rows = db.session.execute(
        select(a.consequent_id, a.consequent_name, func.max(a.lift).label("lift"),
               func.max(a.confidence).label("confidence"), func.max(a.support))
        .where(a.antecedent_id.in_(mine), a.consequent_id.not_in(mine), a.lift > 1)
        .group_by(a.consequent_id, a.consequent_name)
        .order_by(func.max(a.lift).desc(), func.max(a.confidence).desc(), a.consequent_id)
        .limit(limit)).all()
    return [{"product_id": pid, "product_name": name, "lift": round(lift, 4),
             "confidence": round(conf, 4), "support": round(sup, 4)}
            for pid, name, lift, conf, sup in rows]


def contact_extras(contact_id: int) -> dict[str, Any]:
    """The extra scores of one contact, for the API and the panel."""
    from trellis_scoring.models import CustomerValue

    rfm = db.session.get(CustomerRfm, contact_id)
    value = db.session.get(CustomerValue, contact_id)
    return {
        "churn": None if value is None or value.churn_probability is None else {
            "probability": value.churn_probability},
        "clv": None if value is None or value.clv is None else {
            "value": value.clv, "annual_value": value.annual_value},
        "rfm": None if rfm is None else {
            "segment": rfm.segment, "r": rfm.r, "f": rfm.f, "m": rfm.m,
            "recency_days": round(rfm.recency_days, 2), "frequency": rfm.frequency,
            "monetary": float(rfm.monetary)},
        "recommendations": recommendations(contact_id),
    }
