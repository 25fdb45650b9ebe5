"""Sales quotas: a rep's target for a period, in the company currency.

``Quota`` is owned through ``user_id`` (its ``ModelSpec`` names it the owner
field), so the record rules decide who sees which: a Sales Rep (scope ``own``)
reads their own quotas, a Sales Manager (scope ``team``, with ``can_write`` on
``sales.Quota``) manages those of their teams and cannot give one to anybody
outside them.  Attainment is the ``quota_attainment`` report.
"""

from __future__ import annotations

from decimal import Decimal
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import object_session

from trellis.api import model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.views import TrellisModelView
from trellis_sales.models import Quota


def quota_validate(quota: Quota) -> dict[str, list[str]]:
    """Model rule, run on every save: a positive amount, a period that ends on or
    after its start and does not overlap another quota of the same rep."""
    errors: dict[str, list[str]] = {}
    if quota.amount is None or Decimal(str(quota.amount)) <= 0:
        errors["amount"] = ["Must be greater than 0."]
    if quota.user_id is None and quota.user is None:
        errors["user_id"] = ["Choose the rep the quota is for."]
    start, end = quota.period_start, quota.period_end
    if start is None:
        errors["period_start"] = ["Missing data for required field."]
    if end is None:
        errors["period_end"] = ["Missing data for required field."]
    if start is not None and end is not None:
        if end < start:
            errors["period_end"] = ["Must not be before the period start."]
        elif quota.user_id is not None:
            session = object_session(quota)
            with session.no_autoflush:
                other = session.scalars(select(Quota).where(
                    Quota.user_id == quota.user_id, Quota.id != (quota.id or 0),
                    Quota.period_start <= end, Quota.period_end >= start).limit(1)).first()
            if other is not None:
                errors["period_start"] = [
                    f"Overlaps this rep's quota {other.period_start.isoformat()} to "
                    f"{other.period_end.isoformat()}."]
    return errors


class QuotaSchema(Schema):
    """Input rules the API checks before the model rules."""

    user_id = fields.Integer(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    amount = fields.Decimal(required=True, validate=validate.Range(
        min=0, min_inclusive=False, error="Must be greater than 0."))


class QuotaView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Quota)
    list_columns = ["user", "period_start", "period_end", "amount"]
    add_columns = edit_columns = show_columns = ["user", "period_start", "period_end", "amount"]
    search_columns = ["user", "period_start", "period_end"]
    base_order = ("period_start", "desc")
    description_columns = {"amount": "the target, in the company currency",
                           "period_end": "the last day of the period (inclusive)"}


QuotaApi = model_api(Quota, "quota", ["user_id", "period_start", "period_end", "amount"],
                     schema=QuotaSchema, tag="Sales: Quotas",
                     search=["user_id", "period_start", "period_end"])
