"""Trellis Integrations: import/export, duplicates and merge, webhooks, behaviour
events and tracking, connectors.

Where things are: ``models.py`` (tables), ``importer.py`` (CSV/XLSX import:
mapping, validation, matching, journal, revert), ``normalise.py`` (how
e-mails, phones and domains are compared), ``dedupe.py`` (duplicate
candidates; merging itself is the core's ``trellis.merge``), ``webhooks.py``
(signed deliveries, retries, dead-letter), ``tracking.py`` (ingestion API,
snippet, collect endpoint, stitching), ``analytics.py`` (visitors, bounce,
conversion, top pages/products), ``inbound.py`` (inbound webhooks),
``connectors.py`` and ``hookspecs.py`` (chat templates, the connector hook,
e-mail connection tests), ``web.py`` / ``pages.py`` / ``importapi.py`` (views,
pages, REST APIs), ``cli.py`` (``trellis import``), ``demo.py``.
Export of any list is the core's (``trellis.export``).
See plugins/integrations/README.md and docs/integrations.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marshmallow import Schema, fields, validate

from trellis import hookimpl
from trellis.overview import overview_api, overview_view
from trellis.specs import (
    BlueprintSpec,
    EventHandler,
    JobSpec,
    Manifest,
    ModelSpec,
    RoleSpec,
    ScheduleSpec,
    ViewSpec,
    WidgetSpec,
)

__version__ = "0.1.0"

PLUGIN = "integrations"


class IntegrationsSettings(Schema):
    webhook_max_attempts = fields.Integer(
        load_default=8, validate=validate.Range(min=1, max=50),
        metadata={"label": "Delivery attempts before a webhook goes to dead-letter"})
    webhook_retry_base_seconds = fields.Integer(
        load_default=30, validate=validate.Range(min=0, max=3600),
        metadata={"label": "First retry after (seconds); doubles with every attempt"})
    webhook_timeout_seconds = fields.Integer(
        load_default=10, validate=validate.Range(min=1, max=60),
        metadata={"label": "Seconds to wait for a webhook receiver"})
    secret_grace_hours = fields.Integer(
        load_default=24, validate=validate.Range(min=0, max=720),
        metadata={"label": "Hours a rotated webhook secret stays valid"})
    import_batch_size = fields.Integer(
        load_default=2000, validate=validate.Range(min=50, max=50000),
        metadata={"label": "Rows an import validates and writes at a time"})
    default_phone_region = fields.String(
        load_default="US", validate=validate.Regexp(r"^[A-Z]{2}$",
                                                    error="A two-letter country code, e.g. DE."),
        metadata={"label": "Country of imported phone numbers without a +country prefix"})


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Integrations", description="Import/export, dedupe and merge, "
                    "webhooks, event ingestion and connectors.", icon="fa-plug")


@hookimpl
def trellis_add_hookspecs(pm: Any) -> None:
    from trellis_integrations import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return IntegrationsSettings


@hookimpl
def trellis_models() -> list[ModelSpec]:
    from trellis_integrations import models as m
    from trellis_integrations import web, webhooks

    return [
        ModelSpec(m.WebhookEndpoint, "webhook", "Webhook", searchable=("name", "url"),
                  before_save=webhooks.endpoint_before_save,
                  validate=webhooks.endpoint_validate),
        ModelSpec(m.TrackingSite, "tracking_site", "Tracking site", searchable=("name",),
                  before_save=web.site_before_save, validate=web.site_validate),
        ModelSpec(m.InboundSource, "inbound_source", "Inbound webhook",
                  searchable=("name", "slug"), before_save=web.inbound_before_save,
                  validate=web.inbound_validate),
        ModelSpec(m.ImportMapping, "import_mapping", "Import mapping", searchable=("source",)),
    ]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    from trellis_integrations import pages, web

    return [
        ViewSpec(pages.ImportsView, "Import", icon="fa-file-import"),
        ViewSpec(pages.DuplicatesView, "Duplicates", icon="fa-clone"),
        ViewSpec(web.WebhookEndpointView, "Webhooks", icon="fa-satellite-dish"),
        ViewSpec(web.WebhookDeliveryView, "Webhook deliveries", icon="fa-paper-plane"),
        ViewSpec(web.WebhookAttemptView),
        ViewSpec(web.TrackingSiteView, "Tracking sites", icon="fa-globe"),
        ViewSpec(pages.AnalyticsView, "Web analytics", icon="fa-chart-line"),
        ViewSpec(web.InboundSourceView, "Inbound webhooks", icon="fa-sign-in-alt"),
        ViewSpec(pages.ConnectorsView, "Connectors", icon="fa-plug"),
        ViewSpec(overview_view(PLUGIN), "Integrations overview", icon="fa-info-circle"),
    ]


@hookimpl
def trellis_apis() -> list[type]:
    from trellis_integrations import importapi, tracking, web

    return [importapi.ImportApi, importapi.AnalyticsApi, tracking.IngestApi, web.MergeApi,
            web.WebhookEndpointApi, web.WebhookDeliveryApi, web.SiteApi, web.InboundApi,
            overview_api(PLUGIN)]


@hookimpl
def trellis_blueprints() -> list[BlueprintSpec]:
    from trellis_integrations.inbound import inbound
    from trellis_integrations.tracking import collect

    return [BlueprintSpec(collect, public=True), BlueprintSpec(inbound, public=True)]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    data = ["integrations.Import", "integrations.Duplicate", "core.Contact", "core.Account"]
    return [
        RoleSpec("CRM User", [("can_read", "integrations.Overview"),
                              ("can_read", "integrations.Analytics")]),
        RoleSpec("CRM Viewer", [("can_read", "integrations.Analytics")]),
        # imports, duplicate review and merge; webhooks and connectors stay with admins
        RoleSpec("Data Steward", [(p, r) for r in data for p in ("can_read", "can_write")]
                 + [("can_read", "integrations.Analytics"), ("can_read", "core.Dashboard"),
                    ("can_read", "core.Search"), ("can_read", "core.Audit")]),
    ]


@hookimpl
def trellis_event_handlers() -> list[EventHandler]:
    from trellis_integrations import webhooks

    return [EventHandler("*", webhooks.fan_out)]


@hookimpl
def trellis_jobs() -> list[JobSpec]:
    from trellis_integrations import connectors, dedupe, importer, webhooks

    return [
        JobSpec("integrations.run_import", importer.execute_run, timeout=4 * 3600,
                description="import a CSV/XLSX file"),
        JobSpec(webhooks.DELIVER_JOB, webhooks.deliver, timeout=120,
                description="deliver one webhook"),
        JobSpec(webhooks.RETRY_JOB, webhooks.retry_deliveries,
                description="send webhook retries that are due"),
        JobSpec("integrations.find_duplicates", dedupe.find_duplicates, timeout=3600,
                description="find duplicate contacts and accounts"),
        JobSpec("integrations.pull_sources", connectors.pull_sources,
                description="pull events from source connectors"),
    ]


@hookimpl
def trellis_schedules() -> list[ScheduleSpec]:
    return [ScheduleSpec("integrations.retry_deliveries", interval=15),
            ScheduleSpec("integrations.find_duplicates", cron="30 3 * * *"),
            ScheduleSpec("integrations.pull_sources", interval=300)]


@hookimpl
def trellis_dashboard_widgets() -> list[WidgetSpec]:
    from trellis_integrations import analytics as a

    read = ("can_read", "integrations.Analytics")
    return [WidgetSpec("web_visitors", "Website visitors (30 days)", a.widget_visitors,
                       permission=read),
            WidgetSpec("web_conversion", "Website conversion rate", a.widget_conversion,
                       permission=read),
            WidgetSpec("web_top_pages", "Top pages", a.widget_top_pages, kind="bars",
                       permission=read),
            WidgetSpec("web_top_products", "Top products", a.widget_top_products,
                       kind="table", permission=read)]


@hookimpl
def trellis_customer_features() -> list[Any]:
    from trellis_integrations.analytics import features

    return features()


@hookimpl
def trellis_actions() -> list[Any]:
    from trellis.specs import ActionSpec
    from trellis_integrations import webhooks

    return [ActionSpec("integrations.call_webhook", "Call a webhook",
                       webhooks.CallWebhookParams, webhooks.call_webhook, models=("*",),
                       description="Send each record to a webhook endpoint (signed, "
                                   "retried).")]


@hookimpl
def trellis_cli_commands() -> list[Any]:
    from trellis_integrations.cli import COMMANDS

    return COMMANDS


@hookimpl
def trellis_app_ready(app: Any) -> None:
    from trellis_integrations.tracking import limit_collect

    limit_collect(app)


@hookimpl
def trellis_before_merge(session: Any, model: str, winner_id: int, loser_ids: list[int]) -> None:
    from trellis_integrations.dedupe import close_candidates

    close_candidates(session, model, winner_id, loser_ids)


@hookimpl
def trellis_personal_data(session: Any, contact_id: int) -> dict[str, Any] | None:
    from sqlalchemy import select

    from trellis.audit import jsonable
    from trellis_integrations.models import WebEvent, WebVisitor

    events = session.scalars(select(WebEvent).where(WebEvent.contact_id == contact_id)
                             .order_by(WebEvent.occurred_at)).all()
    visitors = session.scalars(select(WebVisitor.visitor_id)
                               .where(WebVisitor.contact_id == contact_id)).all()
    if not events and not visitors:
        return None
    return {"visitor_ids": list(visitors), "web_events": [
        {c.key: jsonable(getattr(e, c.key)) for c in e.__mapper__.column_attrs}
        for e in events]}


@hookimpl
def trellis_erase_personal_data(session: Any, contact_id: int) -> None:
    from sqlalchemy import delete

    from trellis_integrations.models import WebEvent, WebVisitor

    session.execute(delete(WebEvent).where(WebEvent.contact_id == contact_id))
    session.execute(delete(WebVisitor).where(WebVisitor.contact_id == contact_id))


@hookimpl
def trellis_demo_data(session: Any, rng: Any, contact_ids: list[int],
                      locale: str) -> dict[str, int]:
    from trellis_integrations.demo import load

    return load(session, rng, contact_ids, locale)


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
