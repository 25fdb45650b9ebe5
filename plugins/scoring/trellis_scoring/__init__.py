"""Trellis Scoring: CRM value, RFM, lead scoring, churn risk, lifetime value and recommendations.

A skeleton for now: it installs, declares its dependencies, settings and
migration branch, and shows an overview page and a status API.  Its features
arrive in their own issues.
"""

from __future__ import annotations

from pathlib import Path

from marshmallow import ValidationError, Schema, fields, validate, validates_schema

from trellis import hookimpl
from trellis.overview import overview_api, overview_view
from trellis.specs import Manifest, RoleSpec, ViewSpec

__version__ = "0.1.0"

class ScoringSettings(Schema):
    high_tier_from = fields.Float(
        load_default=70.0, validate=validate.Range(min=0, max=100),
        metadata={"label": "CRM value from which a customer is high tier"})
    medium_tier_from = fields.Float(
        load_default=40.0, validate=validate.Range(min=0, max=100),
        metadata={"label": "CRM value from which a customer is medium tier"})

    @validates_schema
    def _tiers_ordered(self, data, **kwargs):
        if data.get("medium_tier_from", 0) >= data.get("high_tier_from", 100):
            raise ValidationError("must be below high_tier_from", field_name="medium_tier_from")


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Scoring", description="CRM value, RFM, lead scoring, churn risk, lifetime value and recommendations.",
                    depends=['sales'], soft_depends=['service'], icon="fa-star")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return ScoringSettings


@hookimpl
def trellis_views() -> list[ViewSpec]:
    return [ViewSpec(overview_view("scoring"), "Scoring overview", icon="fa-star")]


@hookimpl
def trellis_apis() -> list[type]:
    return [overview_api("scoring")]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [RoleSpec("CRM User", [("can_read", "scoring.Overview")])]


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
