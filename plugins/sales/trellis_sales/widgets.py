"""The sales plugin's dashboard widgets (``trellis_dashboard_widgets``).

Each widget is computed from a report of :mod:`trellis_sales.reports` (or one
``restrict()``-ed query) inside the request, so it shows only what the user's
record rules let them see.  All need ``can_read`` on ``sales.Report``.  A Sales
Rep's default dashboard is the pipeline by stage, forecast vs won, win rate and
overdue follow-ups; a Sales Manager's adds the team views (won by rep, quota
attainment, lost reasons, the quarter's forecast).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select

from trellis.currency import company_currency
from trellis.db import db, utcnow
from trellis.i18n import format_day, format_number
from trellis.rules import restrict
from trellis.specs import WidgetSpec
from trellis_sales import reports
from trellis_sales.models import Task

PERMISSION = ("can_read", "sales.Report")
REPS = ("Sales Rep", "Sales Manager")
MANAGERS = ("Sales Manager",)


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _quarter(day: date) -> tuple[date, date]:
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    end = (date(day.year + 1, 1, 1) if first_month == 10
           else date(day.year, first_month + 3, 1)) - timedelta(days=1)
    return start, end


def _fmt(value: Any) -> str:
    return format_number(Decimal(str(value or 0)), 2)


def _unconverted(rows: list[dict[str, Any]], field: str) -> list[dict[str, str]]:
    totals: dict[str, Decimal] = {}
    for row in rows:
        for item in row.get("unconverted", []):
            totals[item["currency"]] = totals.get(item["currency"], Decimal(0)) + Decimal(
                item.get(field, "0"))
    return [{"currency": c, "amount": _fmt(a)} for c, a in sorted(totals.items()) if a]


def _user_names(ids: set[Any]) -> dict[Any, str]:
    from flask_appbuilder.security.sqla.models import User

    from trellis.db import db

    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def forecast_this_quarter() -> dict[str, Any]:
    start, end = _quarter(_today())
    rows = reports.forecast(reports.TOTAL, close_from=start, close_to=end)
    row = rows[0] if rows else {"weighted": "0", "best_case": "0", "committed": "0", "won": "0",
                                "open_deals": 0}
    return {"value": _fmt(row["weighted"]), "unit": company_currency(),
            "note": _("Weighted, %(start)s to %(end)s: %(deals)s open deals, best case "
                      "%(best)s, committed %(committed)s; won so far %(won)s.",
                      start=format_day(start), end=format_day(end), deals=row["open_deals"],
                      best=_fmt(row["best_case"]), committed=_fmt(row["committed"]),
                      won=_fmt(row["won"])),
            "period": {"from": start.isoformat(), "to": end.isoformat()},
            "weighted": row["weighted"], "best_case": row["best_case"],
            "committed": row["committed"], "won": row["won"],
            "unconverted": _unconverted(rows, "best_case")}


def win_rate_90_days() -> dict[str, Any]:
    """Won ÷ closed over the last 90 days, beside the 90 days before."""
    today = _today()
    since = today - timedelta(days=89)
    rows = reports.win_rate(reports.TOTAL, since=since)
    before = reports.win_rate(reports.TOTAL, since=since - timedelta(days=90),
                              until=since - timedelta(days=1))
    row = rows[0] if rows else {"won": 0, "lost": 0, "win_rate": None}
    previous = before[0]["win_rate"] if before else None
    rate = row["win_rate"]
    data = {"value": None if rate is None else f"{rate:.1f} %",
            "win_rate": rate, "won": row["won"], "lost": row["lost"],
            "note": _("Last 90 days: %(won)s won, %(lost)s lost.", won=row["won"],
                      lost=row["lost"])}
    if rate is not None and previous is not None:
        data.update(number=rate, previous=previous, previous_display=f"{previous:.1f} %",
                    previous_label=_("the 90 days before"))
    return data


def overdue_tasks() -> dict[str, Any]:
    """Open follow-ups past their due time, beside how many were overdue a week ago
    (open then and due before then): fewer is better."""
    now = utcnow()
    week_ago = now - timedelta(days=7)
    overdue_now = and_(Task.done_at.is_(None), Task.due_at < now)
    overdue_then = and_(Task.due_at < week_ago,
                        or_(Task.done_at.is_(None), Task.done_at > week_ago))
    count_now, count_then = db.session.execute(restrict(select(
        func.count().filter(overdue_now), func.count().filter(overdue_then))
        .select_from(Task).where(Task.due_at < now), Task)).one()
    return {"value": f"{count_now:,}", "number": count_now, "previous": count_then,
            "previous_display": f"{count_then:,}", "previous_label": _("a week ago"),
            "better": "down", "note": _("Open follow-ups past their due time.")}


def forecast_vs_won() -> dict[str, Any]:
    """Per month, from three months ago to two ahead: the weighted forecast of open
    deals expected to close in the month, their best case, and what was won."""
    today = _today()
    first = date(today.year, today.month, 1)
    months = []
    for shift in range(-3, 3):
        index = first.year * 12 + first.month - 1 + shift
        months.append(date(index // 12, index % 12 + 1, 1))
    end = date(months[-1].year + months[-1].month // 12, months[-1].month % 12 + 1, 1)
    rows = {r["month"]: r for r in reports.forecast("month", close_from=months[0],
                                                    close_to=end - timedelta(days=1))}
    labels = [m.strftime("%Y-%m") for m in months]

    def values(field: str) -> list[float]:
        return [float(rows[m][field]) if m in rows else 0.0 for m in labels]

    return {"labels": labels, "x_label": _("Month (expected close / won)"),
            "y_label": company_currency(),
            "series": [{"label": _("Forecast (weighted)"), "values": values("weighted")},
                       {"label": _("Best case"), "values": values("best_case")},
                       {"label": _("Won"), "values": values("won")}],
            "unconverted": _unconverted(list(rows.values()), "best_case")}


def pipeline_by_stage() -> dict[str, Any]:
    rows = [r for r in reports.forecast("stage") if r["open_deals"]]
    return {"unit": _("Open amounts (best case), %(currency)s", currency=company_currency()),
            "x_label": _("Stage (open deals)"), "y_label": company_currency(),
            "bars": [{"label": f"{r['stage']} ({r['open_deals']})",
                      "value": float(r["best_case"]), "display": _fmt(r["best_case"])}
                     for r in rows],
            "unconverted": _unconverted(rows, "best_case")}


def quota_attainment_now() -> dict[str, Any]:
    rows = reports.quota_attainment(on=_today())
    return {"columns": [_("Rep"), _("Period"), _("Quota"), _("Won"), _("Attained")],
            "rows": [[r["user"], f"{r['period_start']} – {r['period_end']}", _fmt(r["quota"]),
                      _fmt(r["won"]),
                      None if r["attainment"] is None else f"{r['attainment']:.1f} %"]
                     for r in rows],
            "unconverted": _unconverted(rows, "won")}


def lost_reasons_90_days() -> dict[str, Any]:
    rows = reports.lost_reasons(since=_today() - timedelta(days=89))[:5]
    return {"columns": [_("Reason"), _("Deals"),
                        _("Amount (%(currency)s)", currency=company_currency())],
            "rows": [[r["reason"], r["deals"], _fmt(r["amount"])] for r in rows],
            "unconverted": _unconverted(rows, "amount")}


def won_by_rep_this_quarter() -> dict[str, Any]:
    start, end = _quarter(_today())
    rows = [r for r in reports.forecast("owner", close_from=start, close_to=end)
            if Decimal(r["won"])]
    names = _user_names({r["owner"] for r in rows})
    return {"unit": _("Won this quarter, %(currency)s", currency=company_currency()),
            "x_label": _("Rep"), "y_label": company_currency(),
            "bars": [{"label": names.get(r["owner"], _("(no owner)")), "value": float(r["won"]),
                      "display": _fmt(r["won"])} for r in rows],
            "unconverted": _unconverted(rows, "won")}


def widgets() -> list[WidgetSpec]:
    return [
        WidgetSpec("pipeline_by_stage", "Pipeline by stage", pipeline_by_stage, kind="bars",
                   permission=PERMISSION, roles=REPS, order=10,
                   description="Open deals' amounts (best case) per stage."),
        WidgetSpec("forecast_vs_won", "Forecast vs won", forecast_vs_won, kind="bars",
                   permission=PERMISSION, roles=REPS, order=11,
                   description="Weighted forecast and best case by expected-close month, "
                               "beside the amounts won in each month."),
        WidgetSpec("win_rate", "Win rate", win_rate_90_days, kind="kpi",
                   permission=PERMISSION, roles=REPS, order=12,
                   description="Won ÷ (won + lost) over the last 90 days."),
        WidgetSpec("overdue_tasks", "Overdue follow-ups", overdue_tasks, kind="kpi",
                   permission=PERMISSION, roles=REPS, order=13,
                   description="Open follow-ups past their due time."),
        WidgetSpec("forecast_quarter", "Forecast this quarter", forecast_this_quarter,
                   kind="kpi", permission=PERMISSION, roles=MANAGERS, order=14),
        WidgetSpec("won_by_rep", "Won this quarter by rep", won_by_rep_this_quarter,
                   kind="bars", permission=PERMISSION, roles=MANAGERS, order=15),
        WidgetSpec("quota_attainment", "Quota attainment", quota_attainment_now,
                   kind="table", permission=PERMISSION, roles=MANAGERS, order=16),
        WidgetSpec("lost_reasons", "Top lost reasons (90 days)", lost_reasons_90_days,
                   kind="table", permission=PERMISSION, roles=MANAGERS, order=17),
    ]
