"""What the scoring plugin offers other plugins through ``trellis_customer_features``:
its own input feature (``loyalty_months``) and its results (``crm_value``,
``crm_tier``), so segments, SLA policies and reports can use the tier."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import Schema
from sqlalchemy import Select, func, select

from trellis.db import utcnow
from trellis.specs import ActionSpec, FeatureSpec
from trellis.sqlfuncs import month_bucket
from trellis_scoring.models import CRM_VALUE, CustomerScore, ScoringModel

#: How far back ``loyalty_months`` looks.
LOYALTY_WINDOW_DAYS = 730


def loyalty_months() -> Select:
    """Distinct calendar months with a purchase in the last 24 months."""
    from trellis_scoring import purchase_data

    orders = purchase_data.orders().subquery()
    since = utcnow() - timedelta(days=LOYALTY_WINDOW_DAYS)
    # DISTINCT (contact, month) then COUNT: hashable, unlike COUNT(DISTINCT …) per group
    months = (select(orders.c.contact_id.label("contact_id"),
                     month_bucket(orders.c.ordered_at).label("month"))
              .where(orders.c.contact_id.is_not(None), orders.c.ordered_at >= since)
              .distinct()).subquery()
    return (select(months.c.contact_id.label("contact_id"), func.count().label("value"))
            .group_by(months.c.contact_id))


def _score_column(column: str):
    def query() -> Select:
        return (select(CustomerScore.contact_id.label("contact_id"),
                       getattr(CustomerScore, column).label("value"))
                .join(ScoringModel, ScoringModel.id == CustomerScore.model_id)
                .where(ScoringModel.key == CRM_VALUE))
    return query


def rfm_segment() -> Select:
    from trellis_scoring.models import CustomerRfm

    return select(CustomerRfm.contact_id.label("contact_id"), CustomerRfm.segment.label("value"))


def _value_column(column: str):
    def query() -> Select:
        from trellis_scoring.models import CustomerValue

        return select(CustomerValue.contact_id.label("contact_id"),
                      getattr(CustomerValue, column).label("value")).where(
            getattr(CustomerValue, column).is_not(None))
    return query


def features() -> list[FeatureSpec]:
    return [
        FeatureSpec("loyalty_months", "Months with a purchase (last 24)", loyalty_months,
                    description="Distinct calendar months in which the customer bought "
                                "something, over the last 24 months."),
        FeatureSpec("crm_value", "CRM value", _score_column("value"),
                    description="The weighted CRM value model, 0–100."),
        FeatureSpec("crm_tier", "CRM value tier", _score_column("tier"), kind="text",
                    description="high, medium or low (the scoring plugin's thresholds)."),
        FeatureSpec("churn_probability", "Churn risk", _value_column("churn_probability"),
                    description="Probability (0–1) of no purchase within the churn horizon."),
        FeatureSpec("clv", "Customer lifetime value", _value_column("clv"),
                    description="Estimated lifetime value, company currency (docs/scoring.md)."),
        FeatureSpec("rfm_segment", "RFM segment", rfm_segment, kind="text",
                    description="champions, loyal, at risk, hibernating... (docs/scoring.md)"),
    ]


# ------------------------------------------------------------------ actions


class RecomputeParams(Schema):
    """``scoring.recompute`` takes no parameters."""


def recompute(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict:
    """Queue the rescoring of the records' contacts (``scoring.recompute_contacts``,
    after the caller commits)."""
    from trellis.actions import contact_ids
    from trellis.jobs import enqueue

    targets = contact_ids(session, model, ids)
    if targets:
        enqueue("scoring.recompute_contacts", contact_ids=targets)
    return {"queued_contacts": len(targets)}


def actions() -> list[ActionSpec]:
    return [ActionSpec("scoring.recompute", "Recompute scores", RecomputeParams, recompute,
                       models=("*",), description="Rescores the record's contact in every "
                                                  "active scoring model.")]
