"""Panels on record pages: a campaign's and a journey's metrics, and a contact's
marketing e-mail and journeys (:mod:`trellis.panels`)."""

from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import func, select

from trellis.db import db
from trellis.specs import PanelSpec
from trellis_marketing import metrics
from trellis_marketing.models import Campaign, Journey, JourneyEnrolment, Message

LABELS = [("sent", "Sent"), ("delivered", "Delivered"), ("opened", "Opened"),
          ("clicked", "Clicked"), ("unsubscribed", "Unsubscribed"), ("bounced", "Bounced"),
          ("ctr", "CTR"), ("open_rate", "Open rate"), ("conversions", "Conversions"),
          ("conversion_rate", "Conversion rate"), ("revenue", "Revenue"), ("cost", "Cost"),
          ("roi", "ROI")]
RATES = {"ctr", "open_rate", "conversion_rate", "roi"}


def _rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, label in LABELS:
        value = figures.get(key)
        if key in RATES:
            value = "–" if value is None else f"{value * 100:.1f}%"
        out.append((label, str(value)))
    return out


def campaign_panel(record: Campaign) -> str | None:
    figures = metrics.campaign_metrics(db.session, [record.id]).get(record.id)
    if figures is None:
        return None
    return render_template("marketing/metrics_panel.html", rows=_rows(figures), states=None)


def journey_panel(record: Journey) -> str | None:
    figures = metrics.journey_metrics(db.session, [record.id]).get(record.id)
    if figures is None:
        return None
    states = dict(db.session.execute(
        select(JourneyEnrolment.status, func.count()).where(
            JourneyEnrolment.journey_id == record.id).group_by(JourneyEnrolment.status)).all())
    return render_template("marketing/metrics_panel.html", rows=_rows(figures), states=states)


def contact_panel(record: Any) -> str | None:
    messages = db.session.execute(
        select(Message.id, Campaign.name, Message.journey_id, Message.status, Message.sent_at)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.contact_id == record.id).order_by(Message.id.desc()).limit(10)).all()
    entries = db.session.execute(
        select(Journey.name, JourneyEnrolment.status, JourneyEnrolment.step,
               JourneyEnrolment.entered_at)
        .join(Journey, Journey.id == JourneyEnrolment.journey_id)
        .where(JourneyEnrolment.contact_id == record.id)
        .order_by(JourneyEnrolment.id.desc()).limit(10)).all()
    return render_template("marketing/contact_panel.html", messages=messages, entries=entries)


def panels() -> list[PanelSpec]:
    return [
        PanelSpec("campaign_metrics", "Metrics", campaign_panel, models=("campaign",),
                  permission=("can_read", "marketing.Campaign"), order=10),
        PanelSpec("journey_metrics", "Metrics", journey_panel, models=("journey",),
                  permission=("can_read", "marketing.Journey"), order=10),
        PanelSpec("contact_marketing", "Marketing", contact_panel, models=("contact",),
                  permission=("can_read", "marketing.Message"), order=80),
    ]
