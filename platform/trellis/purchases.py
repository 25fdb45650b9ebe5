"""What customers bought: one place for every plugin's purchase history.

The sales plugin records orders; scoring (RFM, lifetime value, "bought X also
buys Y") and marketing (segments on spending, journeys waiting for a purchase)
read them here, so neither reaches into the sales plugin.  Any plugin that
records purchases implements ``trellis_purchase_lines``; :func:`lines` combines
the enabled ones::

    p = purchases.lines().subquery()
    spent = select(p.c.contact_id, func.sum(p.c.amount)).group_by(p.c.contact_id)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (CompoundSelect, DateTime, Integer, Numeric, Select, String, false, null,
                        select, union_all)

#: The columns every ``trellis_purchase_lines`` select has, in this order.
COLUMNS = ("contact_id", "account_id", "order_id", "ordered_at", "product_id", "product_name",
           "quantity", "amount")
_TYPES = (Integer(), Integer(), Integer(), DateTime(timezone=True), Integer(), String(),
          Numeric(18, 4), Numeric(18, 4))


def _empty() -> Select:
    """A select of the right columns with no rows (no plugin records purchases)."""
    return select(*[null().cast(t).label(name) for name, t in zip(COLUMNS, _TYPES)]
                  ).where(false())


def lines() -> Select | CompoundSelect:
    """Every enabled plugin's purchase lines, as one ``UNION ALL`` select.

    Columns: :data:`COLUMNS`.  Use it as a subquery.  A plugin whose select
    has other columns is a programming error (``ValueError`` naming it).
    """
    from trellis.extension import current_trellis

    ext = current_trellis()
    parts: list[Any] = []
    for plugin, stmt in ext.plugins.call_each("trellis_purchase_lines"):
        if not ext.is_enabled(plugin):
            continue
        names = tuple(c.name for c in stmt.selected_columns)
        if names != COLUMNS:
            raise ValueError(f"plugin {plugin!r}: trellis_purchase_lines must select "
                             f"{', '.join(COLUMNS)} (got {', '.join(names)})")
        parts.append(stmt)
    if not parts:
        return _empty()
    return parts[0] if len(parts) == 1 else union_all(*parts)
