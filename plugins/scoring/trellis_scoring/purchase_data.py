"""The purchase lines the scoring plugin reads, materialised once per full recompute.

Every enabled plugin's purchase lines (``trellis.purchases.lines()``, a
``UNION ALL`` of joins with currency conversion) are read by the CRM value's
``loyalty_months`` feature, RFM, churn/CLV and the product associations.  A
full recompute (:func:`materialised`) copies them once into two temporary
tables, so each of those reads a narrow table instead of re-running the joins:

* ``lines``: ``contact_id, order_id, ordered_at, product_id, product_name, amount``;
* ``orders``: one row per ``(contact_id, order_id, ordered_at)`` with the sum of
  its lines' ``amount`` — what the per-customer figures aggregate.

Outside a full recompute (segments, incremental updates, tests of a single
part) :func:`lines` and :func:`orders` read ``trellis.purchases.lines()``
directly; the rows are the same.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from sqlalchemy import (DateTime, Integer, Numeric, Select, String, column, func, insert, select,
                        table, text)

from trellis import purchases

_LINE_COLUMNS = (("contact_id", Integer()), ("order_id", Integer()),
                 ("ordered_at", DateTime(timezone=True)), ("product_id", Integer()),
                 ("product_name", String()), ("amount", Numeric(18, 4)))
_ORDER_COLUMNS = (("contact_id", Integer()), ("order_id", Integer()),
                  ("ordered_at", DateTime(timezone=True)), ("amount", Numeric(18, 4)))
_SQL_TYPES = {"contact_id": "INTEGER", "order_id": "INTEGER",
              "ordered_at": "TIMESTAMP WITH TIME ZONE", "product_id": "INTEGER",
              "product_name": "TEXT", "amount": "NUMERIC(18,4)"}

#: The temporary tables of the running full recompute: (lines, orders) or None.
_current: ContextVar[tuple[str, str] | None] = ContextVar("scoring_purchase_data",
                                                          default=None)


def _table(name: str, columns: tuple) -> Any:
    return table(name, *[column(n, t) for n, t in columns])


def _order_rows(source: Any) -> Select:
    """One row per order of ``source`` (a lines subquery) with its amount."""
    return (select(source.c.contact_id, source.c.order_id, source.c.ordered_at,
                   func.sum(source.c.amount).label("amount"))
            .group_by(source.c.contact_id, source.c.order_id, source.c.ordered_at))


def lines() -> Select:
    """``select(contact_id, order_id, ordered_at, product_id, product_name,
    amount)`` of every purchase line (materialised during a full recompute)."""
    current = _current.get()
    if current is not None:
        t = _table(current[0], _LINE_COLUMNS)
        return select(*t.c)
    src = purchases.lines().subquery()
    return select(*[src.c[n] for n, _ in _LINE_COLUMNS])


def orders() -> Select:
    """``select(contact_id, order_id, ordered_at, amount)``: one row per order
    (its lines' amounts summed; materialised during a full recompute)."""
    current = _current.get()
    if current is not None:
        t = _table(current[1], _ORDER_COLUMNS)
        return select(*t.c)
    return _order_rows(purchases.lines().subquery())


def _create(session: Any, name: str, columns: tuple, source: Select) -> None:
    conn = session.connection()
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} ("
                      + ", ".join(f"{n} {_SQL_TYPES[n]}" for n, _ in columns) + ")"))
    conn.execute(insert(_table(name, columns)).from_select([n for n, _ in columns], source))
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {name}"))


@contextmanager
def materialised(session: Any) -> Iterator[tuple[str, str]]:
    """Copy the purchase lines (and their orders) into temporary tables that
    :func:`lines` and :func:`orders` read until the block ends (then dropped)."""
    suffix = uuid.uuid4().hex[:12]
    names = (f"scoring_lines_{suffix}", f"scoring_orders_{suffix}")
    src = purchases.lines().subquery()
    _create(session, names[0], _LINE_COLUMNS, select(*[src.c[n] for n, _ in _LINE_COLUMNS]))
    _create(session, names[1], _ORDER_COLUMNS,
            _order_rows(_table(names[0], _LINE_COLUMNS)))
    token = _current.set(names)
    try:
        yield names
    finally:
        _current.reset(token)
        for name in names:
            session.connection().execute(text(f"DROP TABLE IF EXISTS {name}"))
