"""Campaign and journey metrics, computed in SQL (one grouped query for the message
counts, one for conversions), for the API, the campaign page and the dashboard.

* ``sent``: messages handed to the SMTP server (accepted, or refused: ``bounced``);
  ``delivered`` = sent − bounced; ``opened``, ``clicked``, ``unsubscribed``: messages
  with that event (the first open, click, unsubscribe);
* ``ctr`` = clicked / delivered; ``open_rate`` = opened / delivered;
* ``conversions``: recipients who bought (any enabled plugin's purchase lines,
  :mod:`trellis.purchases`: orders, won deals turned into orders) within
  ``conversion_days`` after their message was sent; ``conversion_rate`` =
  conversions / delivered; ``revenue``: those orders' amounts (each order counted
  once per campaign or journey);
* ``cost`` (entered on the campaign or journey) and ``roi`` = (revenue − cost) / cost
  (``None`` without a cost).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import case, distinct, func, or_, select

from trellis import purchases
from trellis.sqlfuncs import days_between
from trellis_marketing.models import Campaign, Journey, Message

FIELDS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "ctr",
          "open_rate", "conversions", "conversion_rate", "revenue", "cost", "roi")


def _ratio(part: Any, whole: Any) -> float | None:
    return round(float(part) / float(whole), 4) if whole else None


def _counts(session: Any, key: Any, where: Any) -> dict[int, dict[str, int]]:
    def n(column: Any) -> Any:
        return func.count(column)

    rows = session.execute(
        select(key, func.sum(case((or_(Message.sent_at.is_not(None),
                                       Message.status == "bounced"), 1), else_=0)),
               func.sum(case((Message.status == "bounced", 1), else_=0)),
               n(Message.opened_at), n(Message.clicked_at), n(Message.unsubscribed_at))
        .where(where).group_by(key)).all()
    return {r[0]: {"sent": int(r[1] or 0), "bounced": int(r[2] or 0), "opened": int(r[3] or 0),
                   "clicked": int(r[4] or 0), "unsubscribed": int(r[5] or 0)} for r in rows}


def _conversions(session: Any, key: Any, where: Any, window: Any,
                 joins: tuple[Any, ...]) -> dict[int, tuple[int, Decimal]]:
    lines = purchases.lines().subquery()
    attributed = (select(key.label("k"), lines.c.order_id, lines.c.contact_id)
                  .select_from(Message).join(*joins)
                  .join(lines, lines.c.contact_id == Message.contact_id)
                  .where(where, Message.sent_at.is_not(None), Message.status != "bounced",
                         lines.c.ordered_at >= Message.sent_at,
                         days_between(Message.sent_at, lines.c.ordered_at) <= window)
                  .distinct().subquery())
    amounts = purchases.lines().subquery()
    per_order = (select(amounts.c.order_id, func.sum(amounts.c.amount).label("amount"))
                 .group_by(amounts.c.order_id).subquery())
    orders = select(attributed.c.k, attributed.c.order_id).distinct().subquery()
    revenue = dict(session.execute(
        select(orders.c.k, func.sum(per_order.c.amount))
        .join(per_order, per_order.c.order_id == orders.c.order_id)
        .group_by(orders.c.k)).all())
    buyers = dict(session.execute(
        select(attributed.c.k, func.count(distinct(attributed.c.contact_id)))
        .group_by(attributed.c.k)).all())
    return {k: (int(buyers.get(k) or 0), Decimal(str(revenue.get(k) or 0)))
            for k in set(buyers) | set(revenue)}


def _assemble(counts: dict[str, int], conv: tuple[int, Decimal], cost: Decimal) -> dict[str, Any]:
    delivered = counts.get("sent", 0) - counts.get("bounced", 0)
    buyers, revenue = conv
    cost = Decimal(cost or 0)
    return {
        "sent": counts.get("sent", 0), "delivered": delivered,
        "opened": counts.get("opened", 0), "clicked": counts.get("clicked", 0),
        "unsubscribed": counts.get("unsubscribed", 0), "bounced": counts.get("bounced", 0),
        "ctr": _ratio(counts.get("clicked", 0), delivered),
        "open_rate": _ratio(counts.get("opened", 0), delivered),
        "conversions": buyers, "conversion_rate": _ratio(buyers, delivered),
        "revenue": f"{revenue.quantize(Decimal('0.01'))}",
        "cost": f"{cost.quantize(Decimal('0.01'))}",
        "roi": round(float((revenue - cost) / cost), 4) if cost else None,
    }


def campaign_metrics(session: Any, campaign_ids: list[int] | None = None) -> dict[int, dict]:
    """``{campaign_id: metrics}`` for the given campaigns (all when ``None``)."""
    stmt = select(Campaign.id, Campaign.cost)
    if campaign_ids is not None:
        stmt = stmt.where(Campaign.id.in_(campaign_ids))
    costs = dict(session.execute(stmt).all())
    if not costs:
        return {}
    where = Message.campaign_id.in_(list(costs))
    counts = _counts(session, Message.campaign_id, where)
    conv = _conversions(session, Message.campaign_id, where, Campaign.conversion_days,
                        (Campaign, Campaign.id == Message.campaign_id))
    return {cid: _assemble(counts.get(cid, {}), conv.get(cid, (0, Decimal(0))), cost)
            for cid, cost in costs.items()}


def journey_metrics(session: Any, journey_ids: list[int] | None = None) -> dict[int, dict]:
    """``{journey_id: metrics}`` (their e-mail steps' messages)."""
    stmt = select(Journey.id, Journey.cost)
    if journey_ids is not None:
        stmt = stmt.where(Journey.id.in_(journey_ids))
    costs = dict(session.execute(stmt).all())
    if not costs:
        return {}
    where = Message.journey_id.in_(list(costs))
    counts = _counts(session, Message.journey_id, where)
    conv = _conversions(session, Message.journey_id, where, Journey.conversion_days,
                        (Journey, Journey.id == Message.journey_id))
    return {jid: _assemble(counts.get(jid, {}), conv.get(jid, (0, Decimal(0))), cost)
            for jid, cost in costs.items()}


__all__ = ["campaign_metrics", "journey_metrics", "FIELDS"]
