"""Forecast and win rate, each one SQL statement over the whole table.

Amounts are never added across currencies: every figure is per currency.
Record rules apply: a rep's report counts only what the rep may see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select

from trellis.db import db
from trellis.rules import restrict
from trellis.sqlfuncs import month_bucket
from trellis_sales.models import Deal, Lead, Stage

GROUPS = {"month": None, "owner": Deal.owner_id, "stage": Stage.name}


def _money(value: Any) -> str:
    return f"{float(value or 0):.2f}"


def forecast(group: str = "month", commit_from: int = 75) -> list[dict[str, Any]]:
    """Open deals' weighted pipeline, best case and committed amounts by expected-close
    month (or owner, or stage), beside what was actually won in that month."""
    key = month_bucket(Deal.expected_close) if group == "month" else GROUPS[group]
    open_ = and_(Stage.is_won.is_(False), Stage.is_lost.is_(False))
    weighted = func.sum(case((open_, Deal.amount * Deal.probability / 100.0), else_=0))
    best = func.sum(case((open_, Deal.amount), else_=0))
    committed = func.sum(case((and_(open_, Deal.probability >= commit_from), Deal.amount),
                              else_=0))
    count = func.sum(case((open_, 1), else_=0))
    stmt = (select(key.label("key"), Deal.currency, count, weighted, best, committed)
            .select_from(Deal).join(Stage, Stage.id == Deal.stage_id)
            .group_by(key, Deal.currency).order_by(key, Deal.currency))
    rows = {(r[0], r[1]): r for r in db.session.execute(restrict(stmt, Deal))}
    won: dict[tuple[Any, str], Any] = {}
    if group == "month":  # actually won, by the month it was won
        won_key = month_bucket(Deal.won_at)
        won_stmt = (select(won_key, Deal.currency, func.sum(Deal.amount))
                    .where(Deal.won_at.is_not(None)).group_by(won_key, Deal.currency))
        won = {(k, c): v for k, c, v in db.session.execute(restrict(won_stmt, Deal))}
    out = []
    for k, c in sorted(set(rows) | set(won), key=lambda kc: (str(kc[0]), kc[1])):
        r = rows.get((k, c))
        out.append({group: k, "currency": c, "open_deals": int(r[2]) if r else 0,
                    "weighted": _money(r[3] if r else 0), "best_case": _money(r[4] if r else 0),
                    "committed": _money(r[5] if r else 0), "won": _money(won.get((k, c)))})
    return out


def win_rate(group: str = "owner", since: datetime | None = None) -> list[dict[str, Any]]:
    """Won ÷ (won + lost) of deals closed since ``since``, by owner, source or month."""
    closed_at = func.coalesce(Deal.won_at, Deal.lost_at)
    keys = {"owner": Deal.owner_id, "source": func.coalesce(Lead.source, "direct"),
            "month": month_bucket(closed_at)}
    key = keys[group]
    won = func.sum(case((Stage.is_won.is_(True), 1), else_=0))
    lost = func.sum(case((Stage.is_lost.is_(True), 1), else_=0))
    stmt = (select(key.label("key"), won, lost).select_from(Deal)
            .join(Stage, Stage.id == Deal.stage_id)
            .outerjoin(Lead, Lead.converted_deal_id == Deal.id)
            .where((Stage.is_won.is_(True)) | (Stage.is_lost.is_(True)))
            .group_by(key).order_by(key))
    if since is not None:
        stmt = stmt.where(closed_at >= since)
    return [{group: k, "won": int(w), "lost": int(l),
             "win_rate": round(100.0 * w / (w + l), 1) if (w + l) else None}
            for k, w, l in db.session.execute(restrict(stmt, Deal))]
