"""Trellis Sales: Leads, deals and pipelines, orders, follow-ups, forecast and sales reports.

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

class SalesSettings(Schema):
    company_currency = fields.String(
        load_default="EUR", validate=validate.Regexp(r"^[A-Z]{3}$", error="Use an ISO 4217 code, e.g. EUR."),
        metadata={"label": "Company currency", "description": "Reports are converted to it."})
    stale_deal_days = fields.Integer(
        load_default=14, validate=validate.Range(min=1, max=365),
        metadata={"label": "Days without activity before a deal gets a follow-up task"})
    lead_response_hours = fields.Integer(
        load_default=4, validate=validate.Range(min=1, max=240),
        metadata={"label": "First-response SLA for new leads (business hours)"})


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Sales", description="Leads, deals and pipelines, orders, follow-ups, forecast and sales reports.",
                    depends=[], soft_depends=[], icon="fa-handshake")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return SalesSettings


@hookimpl
def trellis_views() -> list[ViewSpec]:
    return [ViewSpec(overview_view("sales"), "Sales overview", icon="fa-handshake")]


@hookimpl
def trellis_apis() -> list[type]:
    return [overview_api("sales")]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [RoleSpec("CRM User", [("can_read", "sales.Overview")])]


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
