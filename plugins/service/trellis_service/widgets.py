"""The service plugin's dashboard widgets, computed from :mod:`trellis_service.reports`
inside the request (record rules apply).  All need ``can_read`` on ``service.Report``."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from trellis.db import db
from trellis.specs import WidgetSpec
from trellis_service import reports, survey

PERMISSION = ("can_read", "service.Report")
ROLES = ("Service Agent", "Service Manager")


def backlog() -> dict[str, Any]:
    data = reports.backlog(db.session)
    return {"bars": [{"label": _(s), "value": n, "display": str(n)}
                     for s, n in data["by_status"].items()],
            "unit": _("Tickets"), "x_label": _("Status"), "y_label": _("Tickets")}


def sla_compliance() -> dict[str, Any]:
    pct = reports.sla_compliance(db.session)["compliance_pct"]
    return {"value": "–" if pct is None else f"{pct:.1f}", "unit": "%",
            "note": _("tickets met / (met + breached)"),
            **({"number": pct} if pct is not None else {})}


def csat() -> dict[str, Any]:
    rows = survey.csat(db.session, "team")
    responses = sum(r["responses"] for r in rows)
    satisfied = sum(r["responses"] * r["csat_pct"] / 100 for r in rows)
    pct = round(100.0 * satisfied / responses, 1) if responses else None
    return {"value": "–" if pct is None else f"{pct:.1f}", "unit": "% " + _("rated 4-5"),
            "note": _("%(count)s answered surveys", count=responses)}


def volume_by_channel() -> dict[str, Any]:
    data = reports.volume(db.session)["by_channel"]
    return {"slices": [{"label": _(c), "value": n, "display": str(n)} for c, n in data.items()],
            "unit": _("Tickets")}


def widgets() -> list[WidgetSpec]:
    return [
        WidgetSpec("backlog", "Ticket backlog", backlog, kind="bars", permission=PERMISSION,
                   roles=ROLES, order=40, description="Unresolved tickets by status"),
        WidgetSpec("sla_compliance", "SLA compliance", sla_compliance, kind="kpi",
                   permission=PERMISSION, roles=ROLES, order=41,
                   description="Share of decided tickets that met their SLA"),
        WidgetSpec("csat", "Customer satisfaction", csat, kind="kpi", permission=PERMISSION,
                   roles=ROLES, order=42, description="Share of survey ratings of 4 or 5"),
        WidgetSpec("volume_by_channel", "Tickets by channel", volume_by_channel, kind="pie",
                   permission=PERMISSION, roles=("Service Manager",), order=43,
                   description="Tickets created, by channel"),
    ]
