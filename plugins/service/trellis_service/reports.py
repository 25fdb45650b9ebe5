"""Service reports, in SQL under the user's record rules (``trellis.rules.restrict``).

* :func:`response_times`: first-response and resolution time, median and p90,
  in business hours (``first_response_hours`` / ``resolution_hours``, stored on
  the ticket when it is first answered / resolved, from its creation on the
  default calendar; time spent pending counts).  Percentiles interpolate
  linearly between ranks, like PostgreSQL's ``percentile_cont``: the rank
  ``1 + p·(n − 1)`` is found with ``row_number()`` on both databases.
* :func:`sla_compliance`: tickets met vs breached (``sla.state_expression``).
* :func:`backlog`: unresolved tickets by status and by age.
* :func:`volume`: tickets created by channel and by category.
* CSAT by agent / team is :func:`trellis_service.survey.csat`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from trellis.rules import restrict
from trellis_service import sla
from trellis_service.models import Category, Ticket

UNRESOLVED = ("new", "open", "pending")
AGES = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), (">7d", None))


def _bounded(stmt: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(Ticket.created_on >= since)
    if until is not None:
        stmt = stmt.where(Ticket.created_on < until)
    return stmt


def percentiles(session: Any, column: Any, ps: tuple[float, ...] = (0.5, 0.9), *,
                since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """``{"count", "p50", "p90"}`` of a ticket column (``None`` without values)."""
    base = _bounded(restrict(select(column.label("v")).where(column.is_not(None)), Ticket),
                    since, until).subquery()
    n = session.scalar(select(func.count()).select_from(base)) or 0
    out: dict[str, Any] = {"count": n, **{f"p{round(p * 100)}": None for p in ps}}
    if not n:
        return out
    positions = {p: 1 + p * (n - 1) for p in ps}
    ranks = {r for pos in positions.values() for r in (math.floor(pos), math.ceil(pos))}
    ranked = select(base.c.v, func.row_number().over(order_by=base.c.v).label("rn")).subquery()
    values = dict((rn, v) for v, rn in session.execute(
        select(ranked.c.v, ranked.c.rn).where(ranked.c.rn.in_(sorted(ranks)))))
    for p, pos in positions.items():
        lo, hi = values[math.floor(pos)], values[math.ceil(pos)]
        out[f"p{round(p * 100)}"] = round(lo + (pos - math.floor(pos)) * (hi - lo), 2)
    return out


def response_times(session: Any, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, Any]:
    """First-response and resolution time (business hours): count, median, p90."""
    return {"first_response": percentiles(session, Ticket.first_response_hours,
                                          since=since, until=until),
            "resolution": percentiles(session, Ticket.resolution_hours,
                                      since=since, until=until),
            "unit": "business hours"}


def sla_compliance(session: Any, since: datetime | None = None,
                   until: datetime | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Counts per SLA state and the share met among decided tickets (met + breached)."""
    at = sla.utc(at) or sla.clock()
    state = sla.state_expression(at, sla.warn_threshold(session, at)).label("state")
    stmt = _bounded(restrict(select(state, func.count()).select_from(Ticket), Ticket),
                    since, until).group_by(state)
    counts = {s: 0 for s in sla.STATES}
    for name, n in session.execute(stmt):
        if name is not None:
            counts[name] = n
    decided = counts["met"] + counts["breached"]
    return {"counts": counts,
            "compliance_pct": round(100.0 * counts["met"] / decided, 1) if decided else None}


def backlog(session: Any, at: datetime | None = None) -> dict[str, Any]:
    """Unresolved tickets by status and by age since creation."""
    at = sla.utc(at) or sla.clock()
    open_ = Ticket.status.in_(UNRESOLVED)
    by_status = dict(session.execute(restrict(
        select(Ticket.status, func.count()).where(open_).group_by(Ticket.status), Ticket)).all())
    whens = []
    for label, days in AGES:
        if days is not None:
            whens.append((Ticket.created_on > at - timedelta(days=days), label))
    bucket = case(*whens, else_=AGES[-1][0]).label("age")
    by_age = dict(session.execute(restrict(
        select(bucket, func.count()).where(open_).group_by(bucket), Ticket)).all())
    return {"by_status": {s: by_status.get(s, 0) for s in UNRESOLVED},
            "by_age": {label: by_age.get(label, 0) for label, _ in AGES},
            "total": sum(by_status.values())}


def volume(session: Any, since: datetime | None = None,
           until: datetime | None = None) -> dict[str, Any]:
    """Tickets created by channel and by category (``(none)`` without one)."""
    channel = dict(session.execute(_bounded(restrict(
        select(Ticket.channel, func.count()), Ticket), since, until)
        .group_by(Ticket.channel)).all())
    name = func.coalesce(Category.name, "(none)").label("category")
    category = dict(session.execute(_bounded(restrict(
        select(name, func.count()).select_from(Ticket)
        .outerjoin(Category, Category.id == Ticket.category_id), Ticket), since, until)
        .group_by(name)).all())
    return {"by_channel": dict(sorted(channel.items())),
            "by_category": dict(sorted(category.items())),
            "total": sum(channel.values())}


REPORTS = {"response_times": response_times, "sla_compliance": sla_compliance,
           "backlog": backlog, "volume": volume}
