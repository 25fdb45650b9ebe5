"""Trellis Integrations: Import/export, dedupe and merge, webhooks, event ingestion and connectors.

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

class IntegrationsSettings(Schema):
    allow_private_webhook_targets = fields.Boolean(
        load_default=False,
        metadata={"label": "Allow webhooks to private, loopback and link-local addresses"})
    webhook_max_attempts = fields.Integer(
        load_default=8, validate=validate.Range(min=1, max=50),
        metadata={"label": "Delivery attempts before a webhook goes to dead-letter"})


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Integrations", description="Import/export, dedupe and merge, webhooks, event ingestion and connectors.",
                    depends=[], soft_depends=[], icon="fa-plug")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return IntegrationsSettings


@hookimpl
def trellis_views() -> list[ViewSpec]:
    return [ViewSpec(overview_view("integrations"), "Integrations overview", icon="fa-plug")]


@hookimpl
def trellis_apis() -> list[type]:
    return [overview_api("integrations")]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [RoleSpec("CRM User", [("can_read", "integrations.Overview")])]


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
