"""Trellis Service: Tickets with SLAs, multichannel intake, knowledge base and satisfaction surveys.

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

class ServiceSettings(Schema):
    auto_close_days = fields.Integer(
        load_default=7, validate=validate.Range(min=1, max=90),
        metadata={"label": "Close resolved tickets after (days)"})
    survey_on_resolve = fields.Boolean(
        load_default=True, metadata={"label": "Send a satisfaction survey on resolve"})


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Service", description="Tickets with SLAs, multichannel intake, knowledge base and satisfaction surveys.",
                    depends=[], soft_depends=[], icon="fa-life-ring")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return ServiceSettings


@hookimpl
def trellis_views() -> list[ViewSpec]:
    return [ViewSpec(overview_view("service"), "Service overview", icon="fa-life-ring")]


@hookimpl
def trellis_apis() -> list[type]:
    return [overview_api("service")]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [RoleSpec("CRM User", [("can_read", "service.Overview")])]


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
