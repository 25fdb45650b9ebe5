"""Sales reports: each one or two SQL statements over the whole table.

Every report runs its aggregates in the database (``GROUP BY``), on SQLite and
PostgreSQL alike; Python only folds the few grouped rows (one per group and
currency) into the answer.  Record rules apply through :func:`trellis.rules.restrict`:
a rep's report counts only what the rep may see.

Money is reported in the **company currency** (the core setting
``company_currency``), converted with :func:`trellis.currency.conversion` (a join
to the rate ranges: one rate lookup per row) at the rate valid on the day that
matters (won amounts on the day won, lost amounts on the day lost, open
pipeline on ``as_of``, by default today).
Amounts whose currency has no rate valid on that day are never mixed in or
dropped silently: each row lists them, in their own currency, under
``unconverted``.

=====================  ==============================================================
report                 definition
=====================  ==============================================================
``forecast``           open deals by expected-close month / owner / stage: weighted
                       (amount × probability), best case (all open amounts) and
                       committed (probability ≥ ``commit_from``); beside what was won
                       (by the month won / owner / won stage)
``win_rate``           won ÷ (won + lost) of deals closed in the period, by owner /
                       lead source / month closed, with won and lost amounts
``funnel``             leads created in the period, by month / source: count per status,
                       converted (to a deal), deals won; lead→deal, deal→won, lead→won %
``sales_cycle``        won deals: average (min, max) days from creation to won,
                       by owner / month won
``time_in_stage``      per open stage: stints, average days and hours deals spent in it
                       (from stage history; stints still open count up to ``as_of``)
``lost_reasons``       lost deals by reason: count and amount
``pipeline_velocity``  open deals × average won amount × win rate ÷ average sales cycle
                       (days): expected revenue per day, from deals closed in the
                       ``days`` before ``as_of``
``repeat_purchase``    customers (an order's account, else its contact) with ≥ 2 orders
                       in the period ÷ customers with ≥ 1, by month / year
``quota_attainment``   per quota: deals the rep won within the quota period (company
                       currency) ÷ the quota amount
=====================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import DateTime, Numeric, and_, case, func, literal, literal_column, or_, select

from trellis.currency import company_currency, conversion
from trellis.db import db
from trellis.rules import restrict
from trellis.sqlfuncs import days_between, month_bucket, utc_midnight
from trellis_sales.models import LEAD_STATUSES, Deal, DealStageHistory, Lead, Order, Quota, Stage

TOTAL = "total"


# ------------------------------------------------------------------ helpers


def _money(value: Any) -> str:
    return f"{Decimal(str(value or 0)).quantize(Decimal('0.01')):.2f}"


def _pct(part: Any, whole: Any) -> float | None:
    return round(100.0 * float(part) / float(whole), 1) if whole else None


#: ``/ HUNDRED`` divides exactly: a ``NUMERIC`` literal on PostgreSQL (a bound
#: Python float would make it ``DOUBLE PRECISION`` and the sums depend on their
#: order); SQLite has no decimal type and computes in floating point anyway.
HUNDRED = literal_column("100.0", Numeric())


def _round(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _start(day: date | None) -> datetime | None:
    """Midnight UTC at the start of ``day``."""
    return None if day is None else datetime.combine(day, time(), tzinfo=timezone.utc)


def _end(day: date | None) -> datetime | None:
    """Midnight UTC after ``day`` (periods include their last day)."""
    return None if day is None else _start(day + timedelta(days=1))


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _within(column: Any, since: date | None, until: date | None) -> list[Any]:
    """Conditions: a timestamp column on or after ``since`` and on or before ``until``."""
    out = []
    if since is not None:
        out.append(column >= _start(since))
    if until is not None:
        out.append(column < _end(until))
    return out


def _key(group: str, choices: Mapping[str, Any]) -> Any:
    return literal_column(f"'{TOTAL}'") if group == TOTAL else choices[group]


def _by(group: str, key: Any, *others: Any) -> list[Any]:
    """GROUP BY / ORDER BY terms: PostgreSQL refuses a constant (the ``total`` key)."""
    return [*([] if group == TOTAL else [key]), *others]


def _row_key(group: str, value: Any) -> dict[str, Any]:
    return {} if group == TOTAL else {group: value}


class _Fold:
    """Folds rows grouped by ``(key, currency)`` into one row per key.

    ``add`` takes the counts (summed over currencies) and, per money measure,
    the sum converted to the company currency and the sum of what could not be
    converted (in the row's currency, listed under ``unconverted``).
    """

    def __init__(self, measures: Sequence[str], counts: Sequence[str] = ()) -> None:
        self.measures, self.counts = list(measures), list(counts)
        self.rows: dict[Any, dict[str, Any]] = {}

    def add(self, key: Any, currency: str, counts: Sequence[Any],
            converted: Sequence[Any], missing: Sequence[Any], missing_count: Any = 0) -> None:
        row = self.rows.setdefault(key, {
            "counts": dict.fromkeys(self.counts, 0),
            "money": dict.fromkeys(self.measures, Decimal(0)), "unconverted": {}})
        for name, value in zip(self.counts, counts):
            row["counts"][name] += int(value or 0)
        for name, value in zip(self.measures, converted):
            row["money"][name] += Decimal(str(value or 0))
        if int(missing_count or 0) or any(Decimal(str(v or 0)) for v in missing):
            left = row["unconverted"].setdefault(currency, {
                "currency": currency, "deals": 0, **dict.fromkeys(self.measures, Decimal(0))})
            left["deals"] += int(missing_count or 0)
            for name, value in zip(self.measures, missing):
                left[name] += Decimal(str(value or 0))

    def get(self, key: Any) -> dict[str, Any]:
        return self.rows.get(key) or {"counts": dict.fromkeys(self.counts, 0),
                                      "money": dict.fromkeys(self.measures, Decimal(0)),
                                      "unconverted": {}}

    @staticmethod
    def unconverted(row: dict[str, Any], rename: Mapping[str, str] | None = None,
                    count_name: str = "deals") -> list[dict[str, Any]]:
        out = []
        for currency in sorted(row["unconverted"]):
            left = row["unconverted"][currency]
            item: dict[str, Any] = {"currency": currency, count_name: left["deals"]}
            for name, value in left.items():
                if name not in ("currency", "deals"):
                    item[(rename or {}).get(name, name)] = _money(value)
            out.append(item)
        return out


def _sorted_keys(*dicts: Mapping[Any, Any]) -> list[Any]:
    keys: set[Any] = set()
    for d in dicts:
        keys |= set(d)
    return sorted(keys, key=lambda k: (k is None, str(k) if k is not None else ""))


# ------------------------------------------------------------------ forecast


def forecast(group: str = "month", commit_from: int = 75, close_from: date | None = None,
             close_to: date | None = None, as_of: date | None = None) -> list[dict[str, Any]]:
    """Open deals' weighted pipeline, best case and committed amounts by
    expected-close month (or owner, stage, or one ``total`` row), beside what was
    actually won (by the month won; by owner; under the won stage).

    Open amounts convert at the rate valid on ``as_of`` (default today), won
    amounts at the rate of the day they were won.  ``close_from``/``close_to``
    limit open deals by expected close and won deals by the day won.
    """
    company = company_currency()
    as_of = as_of or _today()
    keys = {"month": month_bucket(Deal.expected_close), "owner": Deal.owner_id,
            "stage": Stage.name}
    open_ = and_(Stage.is_won.is_(False), Stage.is_lost.is_(False))
    conds = [open_]
    if close_from is not None:
        conds.append(Deal.expected_close >= close_from)
    if close_to is not None:
        conds.append(Deal.expected_close <= close_to)
    conv = conversion(Deal.amount, Deal.currency, as_of, company)
    inner = restrict(conv.join(
        select(_key(group, keys).label("key"), Deal.currency.label("currency"),
               Deal.amount.label("amount"), Deal.probability.label("p"),
               conv.value.label("conv"))
        .select_from(Deal).join(Stage, Stage.id == Deal.stage_id)).where(*conds),
        Deal).subquery()
    missing = inner.c.conv.is_(None)
    committed = inner.c.p >= commit_from

    def gap(expr: Any) -> Any:
        return func.sum(case((missing, expr), else_=None))

    stmt = (select(inner.c.key, inner.c.currency, func.count(), func.sum(case((missing, 1),
                                                                              else_=0)),
                   func.sum(inner.c.conv * inner.c.p / HUNDRED), func.sum(inner.c.conv),
                   func.sum(case((committed, inner.c.conv), else_=None)),
                   gap(inner.c.amount * inner.c.p / HUNDRED), gap(inner.c.amount),
                   gap(case((committed, inner.c.amount), else_=None)))
            .group_by(inner.c.key, inner.c.currency))
    measures = ["weighted", "best_case", "committed", "won"]
    fold = _Fold(measures, ["open_deals"])
    for k, cur, n, n_missing, w, b, c, mw, mb, mc in db.session.execute(stmt):
        fold.add(k, cur, [n], [w, b, c, 0], [mw, mb, mc, 0], n_missing)

    won_keys = {"month": month_bucket(Deal.won_at), "owner": Deal.owner_id, "stage": Stage.name}
    won_conv = conversion(Deal.amount, Deal.currency, Deal.won_at, company)
    won_inner = restrict(won_conv.join(
        select(_key(group, won_keys).label("key"), Deal.currency.label("currency"),
               Deal.amount.label("amount"), won_conv.value.label("conv"))
        .select_from(Deal).join(Stage, Stage.id == Deal.stage_id))
        .where(Deal.won_at.is_not(None), Stage.is_won.is_(True),
               *_within(Deal.won_at, close_from, close_to)), Deal).subquery()
    won_missing = won_inner.c.conv.is_(None)
    won_stmt = (select(won_inner.c.key, won_inner.c.currency, func.sum(won_inner.c.conv),
                       func.sum(case((won_missing, won_inner.c.amount), else_=None)),
                       func.sum(case((won_missing, 1), else_=0)))
                .group_by(won_inner.c.key, won_inner.c.currency))
    for k, cur, won, won_gap, n_missing in db.session.execute(won_stmt):
        fold.add(k, cur, [0], [0, 0, 0, won], [0, 0, 0, won_gap], n_missing)

    out = []
    for k in _sorted_keys(fold.rows):
        row = fold.get(k)
        out.append({**_row_key(group, k), "currency": company,
                    "open_deals": row["counts"]["open_deals"],
                    **{m: _money(row["money"][m]) for m in measures},
                    "unconverted": _Fold.unconverted(row)})
    return out


# ------------------------------------------------------------------ win rate


def win_rate(group: str = "owner", since: date | None = None,
             until: date | None = None) -> list[dict[str, Any]]:
    """Won ÷ (won + lost) of deals closed (won or lost) in the period, by owner,
    lead source (``direct`` for deals without a lead), month closed or ``total``;
    with the won and lost amounts (at the rate of the day closed)."""
    company = company_currency()
    closed_at = func.coalesce(Deal.won_at, Deal.lost_at)
    # a deal's source: its lead's (the alphabetically first should two leads have
    # been converted to it, so that no deal counts twice), ``direct`` without one
    sources = (select(Lead.converted_deal_id.label("deal_id"), func.min(Lead.source)
                      .label("source"))
               .where(Lead.converted_deal_id.is_not(None))
               .group_by(Lead.converted_deal_id).subquery())
    keys = {"owner": Deal.owner_id, "source": func.coalesce(sources.c.source, "direct"),
            "month": month_bucket(closed_at)}
    won_ = Stage.is_won.is_(True)
    conv = conversion(Deal.amount, Deal.currency, closed_at, company)
    stmt = (select(_key(group, keys).label("key"), Deal.currency.label("currency"),
                   case((won_, 1), else_=0).label("won"),
                   Deal.amount.label("amount"), conv.value.label("conv"))
            .select_from(Deal).join(Stage, Stage.id == Deal.stage_id))
    if group == "source":  # the leads are read only for this grouping
        stmt = stmt.outerjoin(sources, sources.c.deal_id == Deal.id)
    inner = restrict(
        conv.join(stmt)
        .where(or_(won_, Stage.is_lost.is_(True)), closed_at.is_not(None),
               *_within(closed_at, since, until)), Deal).subquery()
    c = inner.c
    missing = c.conv.is_(None)
    stmt = (select(c.key, c.currency, func.sum(c.won), func.sum(1 - c.won),
                   func.sum(case((c.won == 1, c.conv), else_=None)),
                   func.sum(case((c.won == 0, c.conv), else_=None)),
                   func.sum(case((and_(missing, c.won == 1), c.amount), else_=None)),
                   func.sum(case((and_(missing, c.won == 0), c.amount), else_=None)),
                   func.sum(case((missing, 1), else_=0)))
            .group_by(c.key, c.currency))
    fold = _Fold(["won_amount", "lost_amount"], ["won", "lost"])
    for k, cur, won, lost, wa, la, mwa, mla, n_missing in db.session.execute(stmt):
        fold.add(k, cur, [won, lost], [wa, la], [mwa, mla], n_missing)
    out = []
    for k in _sorted_keys(fold.rows):
        row = fold.get(k)
        won, lost = row["counts"]["won"], row["counts"]["lost"]
        out.append({**_row_key(group, k), "won": won, "lost": lost,
                    "win_rate": _pct(won, won + lost), "currency": company,
                    "won_amount": _money(row["money"]["won_amount"]),
                    "lost_amount": _money(row["money"]["lost_amount"]),
                    "unconverted": _Fold.unconverted(row)})
    return out


# ------------------------------------------------------------------ funnel


def funnel(group: str = "month", since: date | None = None,
           until: date | None = None) -> list[dict[str, Any]]:
    """Leads created in the period, by month created, source or ``total``: how
    many are in each status, how many were converted (have a deal, or status
    ``converted``), how many got a deal and how many of those deals are won.

    ``lead_to_deal`` = deals ÷ leads, ``deal_to_won`` = won ÷ deals and
    ``lead_to_won`` = won ÷ leads, in percent.  The record rule applies to the
    leads (a rep's funnel is the rep's leads).
    """
    keys = {"month": month_bucket(Lead.created_on), "source": Lead.source}
    key = _key(group, keys)
    has_deal = Lead.converted_deal_id.is_not(None)
    status_counts = [func.sum(case((Lead.status == s, 1), else_=0)) for s in LEAD_STATUSES]
    stmt = restrict(
        select(key, func.count(Lead.id), *status_counts,
               func.sum(case((or_(has_deal, Lead.status == "converted"), 1), else_=0)),
               func.sum(case((has_deal, 1), else_=0)),
               func.sum(case((and_(has_deal, Stage.is_won.is_(True)), 1), else_=0)))
        .select_from(Lead)
        .outerjoin(Deal, Deal.id == Lead.converted_deal_id)
        .outerjoin(Stage, Stage.id == Deal.stage_id)
        .where(*_within(Lead.created_on, since, until))
        .group_by(*_by(group, key)).order_by(*_by(group, key)), Lead)
    out = []
    for row in db.session.execute(stmt):
        k, leads, *rest = row
        by_status = {s: int(n or 0) for s, n in zip(LEAD_STATUSES, rest)}
        converted, deals, won = (int(n or 0) for n in rest[len(LEAD_STATUSES):])
        out.append({**_row_key(group, k), "leads": int(leads), "by_status": by_status,
                    "converted": converted, "deals": deals, "won": won,
                    "lead_to_deal": _pct(deals, leads), "deal_to_won": _pct(won, deals),
                    "lead_to_won": _pct(won, leads)})
    return out


# ------------------------------------------------------------------ sales cycle


def sales_cycle(group: str = "owner", since: date | None = None,
                until: date | None = None) -> list[dict[str, Any]]:
    """Won deals (won in the period): average, shortest and longest number of
    days from the deal's creation to its win, by owner, month won or ``total``."""
    keys = {"owner": Deal.owner_id, "month": month_bucket(Deal.won_at)}
    key = _key(group, keys)
    days = days_between(Deal.created_on, Deal.won_at)
    stmt = restrict(
        select(key, func.count(Deal.id), func.avg(days), func.min(days), func.max(days))
        .select_from(Deal).join(Stage, Stage.id == Deal.stage_id)
        .where(Deal.won_at.is_not(None), Stage.is_won.is_(True),
               *_within(Deal.won_at, since, until))
        .group_by(*_by(group, key)).order_by(*_by(group, key)), Deal)
    return [{**_row_key(group, k), "won_deals": int(n), "avg_days": _round(avg),
             "min_days": _round(lo), "max_days": _round(hi)}
            for k, n, avg, lo, hi in db.session.execute(stmt)]


# ------------------------------------------------------------------ time in stage


def time_in_stage(pipeline_id: int | None = None, since: date | None = None,
                  as_of: datetime | None = None) -> list[dict[str, Any]]:
    """Per open stage (not won or lost), from the stage history: how many times
    deals entered it (``stints``, those entered since ``since``), how many are
    still in it, and the average time spent in it, in days and hours.  A stint
    that has not ended (or ended after ``as_of``) counts up to ``as_of``
    (default now)."""
    now = as_of or datetime.now(timezone.utc)
    now_sql = literal(now, DateTime(timezone=True))
    h = DealStageHistory
    still_open = or_(h.left_at.is_(None), h.left_at > now_sql)
    ended = case((still_open, now_sql), else_=h.left_at)
    days = days_between(h.entered_at, ended)
    conds = [Stage.is_won.is_(False), Stage.is_lost.is_(False), h.entered_at <= now_sql,
             *_within(h.entered_at, since, None)]
    if pipeline_id is not None:
        conds.append(Stage.pipeline_id == pipeline_id)
    stmt = restrict(
        select(Stage.pipeline_id, Stage.id, Stage.name, func.count(h.id),
               func.sum(case((still_open, 1), else_=0)), func.avg(days))
        .select_from(h).join(Stage, Stage.id == h.stage_id).where(*conds)
        .group_by(Stage.pipeline_id, Stage.id, Stage.name, Stage.position)
        .order_by(Stage.pipeline_id, Stage.position, Stage.id), h)
    return [{"pipeline_id": p, "stage_id": sid, "stage": name, "stints": int(n),
             "open_stints": int(o or 0), "avg_days": _round(avg, 2),
             "avg_hours": _round(float(avg) * 24 if avg is not None else None)}
            for p, sid, name, n, o, avg in db.session.execute(stmt)]


# ------------------------------------------------------------------ lost reasons


def lost_reasons(since: date | None = None, until: date | None = None) -> list[dict[str, Any]]:
    """Deals lost in the period by reason (trimmed; ``(none)`` when empty): how
    many and their amount (at the rate of the day lost), most frequent first."""
    company = company_currency()
    reason = func.coalesce(func.nullif(func.trim(Deal.lost_reason), ""), "(none)")
    conv = conversion(Deal.amount, Deal.currency, Deal.lost_at, company)
    inner = restrict(conv.join(
        select(reason.label("reason"), Deal.currency.label("currency"),
               Deal.amount.label("amount"), conv.value.label("conv"))
        .select_from(Deal).join(Stage, Stage.id == Deal.stage_id))
        .where(Stage.is_lost.is_(True), *_within(Deal.lost_at, since, until)), Deal).subquery()
    c = inner.c
    missing = c.conv.is_(None)
    stmt = (select(c.reason, c.currency, func.count(), func.sum(c.conv),
                   func.sum(case((missing, c.amount), else_=None)),
                   func.sum(case((missing, 1), else_=0)))
            .group_by(c.reason, c.currency))
    fold = _Fold(["amount"], ["deals"])
    for k, cur, n, conv, gap, n_missing in db.session.execute(stmt):
        fold.add(k, cur, [n], [conv], [gap], n_missing)
    rows = [{"reason": k, "deals": fold.get(k)["counts"]["deals"], "currency": company,
             "amount": _money(fold.get(k)["money"]["amount"]),
             "unconverted": _Fold.unconverted(fold.get(k))} for k in fold.rows]
    return sorted(rows, key=lambda r: (-r["deals"], r["reason"]))


# ------------------------------------------------------------------ velocity


def pipeline_velocity(group: str = TOTAL, days: int = 365,
                      as_of: date | None = None) -> list[dict[str, Any]]:
    """Pipeline velocity: the revenue the pipeline is expected to bring in per day.

    ``velocity = open deals × average won amount × win rate ÷ average sales cycle``

    * *open deals*: deals in an open stage now;
    * the other three come from deals closed in the window of ``days`` days
      ending on ``as_of`` (default today): *average won amount* of the deals won
      (company currency, at the rate of the day won; unconverted ones are left
      out of the average and listed), *win rate* = won ÷ (won + lost), *average
      sales cycle* = mean days from creation to won of the deals won.

    ``velocity`` is in the company currency per day; ``None`` when the window
    has no won deal.  By owner or one ``total`` row.
    """
    company = company_currency()
    as_of = as_of or _today()
    start, end = _start(as_of - timedelta(days=days - 1)), _end(as_of)
    keys = {"owner": Deal.owner_id}
    won_in = and_(Stage.is_won.is_(True), Deal.won_at >= start, Deal.won_at < end)
    lost_in = and_(Stage.is_lost.is_(True), Deal.lost_at >= start, Deal.lost_at < end)
    open_ = and_(Stage.is_won.is_(False), Stage.is_lost.is_(False))
    conv = conversion(Deal.amount, Deal.currency, Deal.won_at, company)
    inner = restrict(conv.join(
        select(_key(group, keys).label("key"), Deal.currency.label("currency"),
               case((open_, 1), else_=0).label("open"), case((won_in, 1), else_=0).label("won"),
               case((lost_in, 1), else_=0).label("lost"), Deal.amount.label("amount"),
               case((won_in, days_between(Deal.created_on, Deal.won_at)), else_=None)
               .label("days"),
               case((won_in, conv.value), else_=None).label("conv"))
        .select_from(Deal).join(Stage, Stage.id == Deal.stage_id))
        .where(or_(open_, won_in, lost_in)), Deal).subquery()
    c = inner.c
    missing = and_(c.won == 1, c.conv.is_(None))
    stmt = (select(c.key, c.currency, func.sum(c.open), func.sum(c.won), func.sum(c.lost),
                   func.sum(c.days), func.sum(c.conv),
                   func.sum(case((c.conv.is_not(None), 1), else_=0)),
                   func.sum(case((missing, c.amount), else_=None)),
                   func.sum(case((missing, 1), else_=0)))
            .group_by(c.key, c.currency))
    fold = _Fold(["won_amount", "cycle_days"], ["open_deals", "won", "lost", "converted_won"])
    for k, cur, o, w, lo, d, conv, n_conv, gap, n_missing in db.session.execute(stmt):
        fold.add(k, cur, [o, w, lo, n_conv], [conv, d], [gap, 0], n_missing)
    out = []
    for k in _sorted_keys(fold.rows):
        row = fold.get(k)
        n = row["counts"]
        won, lost = n["won"], n["lost"]
        avg_amount = (row["money"]["won_amount"] / n["converted_won"]
                      if n["converted_won"] else None)
        avg_days = float(row["money"]["cycle_days"]) / won if won else None
        rate = won / (won + lost) if won + lost else None
        velocity = None
        if avg_amount is not None and rate is not None and avg_days:
            velocity = float(n["open_deals"]) * float(avg_amount) * rate / avg_days
        unconverted = [{"currency": u["currency"], "won_deals": u["deals"],
                        "won_amount": u["won_amount"]}
                       for u in _Fold.unconverted(row)]
        out.append({**_row_key(group, k), "open_deals": n["open_deals"], "won": won,
                    "lost": lost, "win_rate": _pct(won, won + lost), "currency": company,
                    "avg_won_amount": None if avg_amount is None else _money(avg_amount),
                    "avg_cycle_days": _round(avg_days, 2),
                    "velocity_per_day": None if velocity is None else _money(velocity),
                    "window": {"from": (as_of - timedelta(days=days - 1)).isoformat(),
                               "to": as_of.isoformat()},
                    "unconverted": unconverted})
    return out


# ------------------------------------------------------------------ repeat purchase


def repeat_purchase(group: str = "year", since: date | None = None,
                    until: date | None = None) -> list[dict[str, Any]]:
    """Repeat-purchase rate per period (month, year or ``total``): customers with
    at least two orders in the period ÷ customers with at least one.  A customer
    is the order's account, or its contact when it has no account; orders with
    neither are left out."""
    keys = {"month": month_bucket(Order.ordered_at),
            "year": func.substr(month_bucket(Order.ordered_at), 1, 4)}
    key = _key(group, keys)
    person = case((Order.account_id.is_(None), Order.contact_id), else_=None)
    per_customer = restrict(
        select(key.label("period"), Order.account_id.label("account"), person.label("person"),
               func.count(Order.id).label("orders"))
        .where(or_(Order.account_id.is_not(None), Order.contact_id.is_not(None)),
               *_within(Order.ordered_at, since, until))
        .group_by(*_by(group, key, Order.account_id, person)), Order).subquery()
    c = per_customer.c
    stmt = (select(c.period, func.count(), func.sum(case((c.orders >= 2, 1), else_=0)),
                   func.sum(c.orders))
            .group_by(c.period).order_by(c.period))
    return [{**_row_key(group, k), "customers": int(n), "repeat_customers": int(r or 0),
             "orders": int(o or 0), "repeat_rate": _pct(r or 0, n)}
            for k, n, r, o in db.session.execute(stmt)]


# ------------------------------------------------------------------ quotas


def quota_attainment(on: date | None = None, since: date | None = None,
                     until: date | None = None,
                     user_id: int | None = None) -> list[dict[str, Any]]:
    """Per quota (optionally: whose period contains ``on``, overlaps
    ``since``..``until``, of one user): the amount of the deals the rep owns that
    were won within the quota period (inclusive, UTC days), in the company
    currency at the rate of the day won, ÷ the quota amount, in percent."""
    company = company_currency()
    conversion_ = conversion(Deal.amount, Deal.currency, Deal.won_at, company)
    conv = conversion_.value
    missing = and_(Deal.id.is_not(None), conv.is_(None))
    conds = []
    if on is not None:
        conds += [Quota.period_start <= on, Quota.period_end >= on]
    if since is not None:
        conds.append(Quota.period_end >= since)
    if until is not None:
        conds.append(Quota.period_start <= until)
    if user_id is not None:
        conds.append(Quota.user_id == user_id)
    # won on a UTC day from period_start to period_end, as a range of won_at
    # (index ix_sales_deal_owner_won), not utc_day(won_at) BETWEEN … (no index)
    stmt = restrict(
        conversion_.join(
            select(Quota.id, Quota.user_id, User.username, Quota.period_start,
                   Quota.period_end, Quota.amount, Deal.currency, func.count(Deal.id),
                   func.sum(conv), func.sum(case((missing, Deal.amount), else_=None)),
                   func.sum(case((missing, 1), else_=0)))
            .select_from(Quota).join(User, User.id == Quota.user_id)
            .outerjoin(Deal, and_(Deal.owner_id == Quota.user_id, Deal.won_at.is_not(None),
                                  Deal.won_at >= utc_midnight(Quota.period_start),
                                  Deal.won_at < utc_midnight(Quota.period_end, 1))))
        .where(*conds)
        .group_by(Quota.id, Quota.user_id, User.username, Quota.period_start,
                  Quota.period_end, Quota.amount, Deal.currency), Quota)
    fold = _Fold(["won"], ["won_deals"])
    info: dict[int, tuple[Any, ...]] = {}
    for qid, uid, username, start, end, amount, cur, n, won, gap, n_missing in \
            db.session.execute(stmt):
        info[qid] = (uid, username, start, end, amount)
        fold.add(qid, cur, [n], [won], [gap], n_missing)
    out = []
    for qid in sorted(info, key=lambda q: (info[q][2], info[q][1], q)):
        uid, username, start, end, amount = info[qid]
        row = fold.get(qid)
        won = row["money"]["won"]
        out.append({"quota_id": qid, "user_id": uid, "user": username,
                    "period_start": _iso(start), "period_end": _iso(end),
                    "currency": company, "quota": _money(amount), "won": _money(won),
                    "won_deals": row["counts"]["won_deals"],
                    "attainment": _pct(won, amount) if amount else None,
                    "unconverted": [{"currency": u["currency"], "won_deals": u["deals"],
                                     "won": u["won"]} for u in _Fold.unconverted(row)]})
    return out


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


# ------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class Param:
    """A query parameter of a report: ``choice``, ``int``, ``date`` or ``datetime``."""

    kind: str
    default: Any = None
    choices: Sequence[str] = ()
    low: int | None = None
    high: int | None = None


@dataclass(frozen=True)
class Report:
    func: Callable[..., list[dict[str, Any]]]
    params: Mapping[str, Param]

    @property
    def description(self) -> str:
        return (self.func.__doc__ or "").strip().split("\n\n")[0].replace("\n    ", " ")


def _group(default: str, *choices: str) -> Param:
    return Param("choice", default, choices)


SINCE_UNTIL = {"since": Param("date"), "until": Param("date")}

REPORTS: dict[str, Report] = {
    "forecast": Report(forecast, {"group": _group("month", "month", "owner", "stage", TOTAL),
                                  "commit_from": Param("int", 75, low=0, high=100),
                                  "close_from": Param("date"), "close_to": Param("date"),
                                  "as_of": Param("date")}),
    "win_rate": Report(win_rate, {"group": _group("owner", "owner", "source", "month", TOTAL),
                                  **SINCE_UNTIL}),
    "funnel": Report(funnel, {"group": _group("month", "month", "source", TOTAL),
                              **SINCE_UNTIL}),
    "sales_cycle": Report(sales_cycle, {"group": _group("owner", "owner", "month", TOTAL),
                                        **SINCE_UNTIL}),
    "time_in_stage": Report(time_in_stage, {"pipeline_id": Param("int", low=1),
                                            "since": Param("date"),
                                            "as_of": Param("datetime")}),
    "lost_reasons": Report(lost_reasons, SINCE_UNTIL),
    "pipeline_velocity": Report(pipeline_velocity, {
        "group": _group(TOTAL, TOTAL, "owner"), "days": Param("int", 365, low=1, high=3660),
        "as_of": Param("date")}),
    "repeat_purchase": Report(repeat_purchase, {"group": _group("year", "month", "year", TOTAL),
                                                **SINCE_UNTIL}),
    "quota_attainment": Report(quota_attainment, {"on": Param("date"), **SINCE_UNTIL,
                                                  "user_id": Param("int", low=1)}),
}


def parse_params(report: Report, args: Mapping[str, str]) -> tuple[dict[str, Any],
                                                                   dict[str, list[str]]]:
    """``(keyword arguments, field errors)`` from a request's query string."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in args:
        if name not in report.params:
            errors[name] = [f"Unknown parameter; use: {', '.join(report.params) or 'none'}."]
    for name, param in report.params.items():
        raw = args.get(name)
        if raw is None or raw == "":
            values[name] = param.default
            continue
        if param.kind == "choice":
            if raw in param.choices:
                values[name] = raw
            else:
                errors[name] = [f"Must be one of: {', '.join(param.choices)}."]
        elif param.kind == "int":
            try:
                number = int(raw)
                if (param.low is not None and number < param.low) or (
                        param.high is not None and number > param.high):
                    raise ValueError
                values[name] = number
            except ValueError:
                if param.high is not None:
                    errors[name] = [f"Must be a whole number from {param.low} to {param.high}."]
                else:
                    errors[name] = [f"Must be a whole number of at least {param.low}."]
        elif param.kind == "date":
            try:
                values[name] = date.fromisoformat(raw)
            except ValueError:
                errors[name] = ["Not a valid date, e.g. 2026-01-31."]
        else:  # datetime
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                values[name] = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
            except ValueError:
                errors[name] = ["Not a valid date and time, e.g. 2026-01-31T12:00:00Z."]
    if not errors:
        since, until = values.get("since"), values.get("until")
        if since is not None and until is not None and until < since:
            errors["until"] = ["Must not be before since."]
        low, high = values.get("close_from"), values.get("close_to")
        if low is not None and high is not None and high < low:
            errors["close_to"] = ["Must not be before close_from."]
    return values, errors


def run(name: str, **params: Any) -> list[dict[str, Any]]:
    """Run report ``name`` with already-validated parameters."""
    return REPORTS[name].func(**params)
