"""Trellis Marketing: Segments, personalised e-mail campaigns, journeys and campaign metrics.

A skeleton for now: it installs, declares its dependencies, settings and
migration branch, and shows an overview page and a status API.  Its features
arrive in their own issues.
"""

from __future__ import annotations

from pathlib import Path

from marshmallow import Schema, fields, validate

from trellis import hookimpl
from trellis.overview import overview_api, overview_view
from trellis.specs import Manifest, RoleSpec, ViewSpec

__version__ = "0.1.0"

class MarketingSettings(Schema):
    from_address = fields.Email(
        load_default="marketing@example.com", metadata={"label": "Sender address"})
    send_rate_per_minute = fields.Integer(
        load_default=600, validate=validate.Range(min=1, max=100000),
        metadata={"label": "Maximum e-mails sent per minute"})


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Marketing", description="Segments, personalised e-mail campaigns, journeys and campaign metrics.",
                    depends=[], soft_depends=['sales', 'scoring'], icon="fa-bullhorn")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return MarketingSettings


@hookimpl
def trellis_views() -> list[ViewSpec]:
    return [ViewSpec(overview_view("marketing"), "Marketing overview", icon="fa-bullhorn")]


@hookimpl
def trellis_apis() -> list[type]:
    return [overview_api("marketing")]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [RoleSpec("CRM User", [("can_read", "marketing.Overview")])]


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
