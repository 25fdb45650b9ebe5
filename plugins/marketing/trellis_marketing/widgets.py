"""The marketing plugin's dashboard widgets: campaign performance (a table), the
last 30 days' marketing funnel and revenue attributed to campaigns.  All need
``can_read`` on ``marketing.Campaign``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from trellis.db import db, utcnow
from trellis.i18n import format_number
from trellis.specs import WidgetSpec
from trellis_marketing import metrics
from trellis_marketing.models import Campaign

PERMISSION = ("can_read", "marketing.Campaign")
ROLES = ("Marketer",)


def _recent(days: int | None = None, limit: int = 10) -> list[tuple[int, str]]:
    stmt = select(Campaign.id, Campaign.name).where(Campaign.started_at.is_not(None))
    if days is not None:
        stmt = stmt.where(Campaign.started_at >= utcnow() - timedelta(days=days))
    return db.session.execute(stmt.order_by(Campaign.started_at.desc()).limit(limit)).all()


def performance() -> dict[str, Any]:
    rows = _recent()
    found = metrics.campaign_metrics(db.session, [r[0] for r in rows])

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value * 100:.1f}%"

    return {"columns": [_("Campaign"), _("Sent"), _("Opened"), _("CTR"), _("Conversion"),
                        _("Revenue"), _("ROI")],
            "rows": [[name, found[i]["sent"], found[i]["opened"], pct(found[i]["ctr"]),
                      pct(found[i]["conversion_rate"]), found[i]["revenue"],
                      pct(found[i]["roi"])] for i, name in rows]}


def funnel() -> dict[str, Any]:
    rows = _recent(days=30, limit=1000)
    found = metrics.campaign_metrics(db.session, [r[0] for r in rows]).values()
    steps = [(_("Delivered"), "delivered"), (_("Opened"), "opened"), (_("Clicked"), "clicked"),
             (_("Bought"), "conversions")]
    return {"steps": [{"label": label, "value": sum(m[key] for m in found),
                       "display": format_number(sum(m[key] for m in found))}
                      for label, key in steps],
            "note": _("campaigns started in the last 30 days")}


def revenue() -> dict[str, Any]:
    rows = _recent(days=30, limit=1000)
    found = metrics.campaign_metrics(db.session, [r[0] for r in rows]).values()
    total = sum((Decimal(m["revenue"]) for m in found), Decimal(0))
    cost = sum((Decimal(m["cost"]) for m in found), Decimal(0))
    return {"value": format_number(total, 2), "number": float(total),
            "note": _("cost %(cost)s; campaigns started in the last 30 days",
                      cost=format_number(cost, 2))}


def widgets() -> list[WidgetSpec]:
    return [
        WidgetSpec("campaign_performance", "Campaign performance", performance, kind="table",
                   permission=PERMISSION, roles=ROLES, order=40),
        WidgetSpec("campaign_funnel", "Marketing funnel (30 days)", funnel, kind="funnel",
                   permission=PERMISSION, roles=ROLES, order=41),
        WidgetSpec("campaign_revenue", "Campaign revenue (30 days)", revenue, kind="kpi",
                   permission=PERMISSION, roles=ROLES, order=42),
    ]
