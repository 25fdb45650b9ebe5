"""Trellis Marketing: Segments, personalised e-mail campaigns, journeys and campaign metrics.

Where things are: ``models.py`` (tables), ``segments.py`` (segments over the
core's :mod:`trellis.conditions`), ``web.py`` (views and REST APIs).
See plugins/marketing/README.md and docs/marketing.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marshmallow import Schema, fields, validate

from trellis import hookimpl
from trellis.overview import overview_api, overview_view
from trellis.specs import Manifest, ModelSpec, RoleSpec, ViewSpec

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


#: What marketers read and write, and what they only read.
MARKETING = ["marketing.Segment", "marketing.EmailTemplate", "marketing.Campaign",
             "marketing.Message", "marketing.Journey", "marketing.JourneyEnrolment"]
READ_ONLY = ["marketing.Overview", "core.Contact", "core.Account", "core.Activity",
             "core.Tag", "core.Consent", "core.Dashboard"]


@hookimpl
def trellis_models() -> list[ModelSpec]:
    from trellis_marketing import segments
    from trellis_marketing import web
    from trellis_marketing import journeys
    from trellis_marketing.models import (Campaign, EmailTemplate, Journey, JourneyEnrolment,
                                          Message, Segment)

    return [ModelSpec(Segment, "segment", "Segment", searchable=("name",),
                      validate=segments.segment_validate,
                      before_save=segments.segment_before_save),
            ModelSpec(EmailTemplate, "email_template", "E-mail template", searchable=("name",),
                      validate=web.template_validate),
            ModelSpec(Campaign, "campaign", "Campaign", searchable=("name",),
                      validate=web.campaign_validate, before_save=web.campaign_before_save),
            ModelSpec(Message, "campaign_message", "Campaign message", audited=False,
                      contact_field="contact_id"),
            ModelSpec(Journey, "journey", "Journey", searchable=("name",),
                      validate=journeys.journey_validate,
                      before_save=journeys.journey_before_save),
            ModelSpec(JourneyEnrolment, "journey_enrolment", "Journey enrolment",
                      audited=False, contact_field="contact_id")]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    from trellis_marketing import builder, web

    return [ViewSpec(web.SegmentView, "Segments", icon="fa-filter"),
            ViewSpec(builder.SegmentBuilderView, "Segment builder", icon="fa-sitemap"),
            ViewSpec(web.TemplateView, "E-mail templates", icon="fa-envelope-open-text"),
            ViewSpec(web.CampaignView, "Campaigns", icon="fa-paper-plane"),
            ViewSpec(web.JourneyView, "Journeys", icon="fa-route"),
            ViewSpec(overview_view("marketing"), "Marketing overview", icon="fa-bullhorn")]


@hookimpl
def trellis_apis() -> list[type]:
    from trellis_marketing import web

    return [web.SegmentApi, web.SegmentToolsApi, web.TemplateApi, web.TemplateToolsApi,
            web.CampaignApi, web.CampaignToolsApi, web.MessageApi, web.JourneyApi,
            web.EnrolmentApi, web.JourneyToolsApi, overview_api("marketing")]


@hookimpl
def trellis_dashboard_widgets() -> list:
    from trellis_marketing import widgets

    return widgets.widgets()


@hookimpl
def trellis_blueprints() -> list:
    from trellis_marketing.tracking import BLUEPRINT

    return [BLUEPRINT]


@hookimpl
def trellis_jobs() -> list:
    from trellis.specs import JobSpec
    from trellis_marketing import campaigns, journeys

    return [JobSpec("marketing.send_campaign", campaigns.send_campaign, timeout=6 * 3600,
                    description="send a campaign's queued e-mail in claimed batches"),
            JobSpec("marketing.recover", campaigns.recover,
                    description="re-queue stale claims, resume campaigns, start scheduled "
                                "ones, pick A/B winners"),
            JobSpec("marketing.journeys", journeys.tick,
                    description="enrol contacts in journeys and run their due steps"),
            JobSpec("marketing.send_journey_messages", journeys.send_messages,
                    description="send queued journey e-mail"),
            JobSpec("marketing.journey_webhook", journeys.call_webhook,
                    description="call a journey's webhook step for the contacts reaching it")]


@hookimpl
def trellis_schedules() -> list:
    from trellis.specs import ScheduleSpec

    return [ScheduleSpec("marketing.recover", interval=60),
            ScheduleSpec("marketing.journeys", interval=60)]


@hookimpl
def trellis_event_handlers() -> list:
    from trellis.specs import EventHandler
    from trellis_marketing import journeys

    return [EventHandler("*", journeys.on_event)]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    grants = ([(p, r) for r in MARKETING for p in ("can_read", "can_write")]
              + [("can_read", r) for r in READ_ONLY])
    return [RoleSpec("Marketer", grants, scope="all"),
            RoleSpec("CRM User", [("can_read", "marketing.Overview")])]


@hookimpl
def trellis_actions() -> list:
    from trellis_marketing.actions import actions

    return actions()


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")


@hookimpl
def trellis_personal_data(session: Any, contact_id: int) -> dict[str, Any] | None:
    from trellis_marketing.privacy import personal_data

    return personal_data(session, contact_id)


@hookimpl
def trellis_erase_personal_data(session: Any, contact_id: int) -> None:
    from trellis_marketing.privacy import erase

    erase(session, contact_id)


@hookimpl
def trellis_record_panels() -> list:
    from trellis_marketing.panels import panels

    return panels()


@hookimpl
def trellis_demo_data(session: Any, rng: Any, contact_ids: list[int],
                      users_password: str | None, locale: str) -> dict[str, int]:
    from trellis_marketing.demo import load

    return load(session, rng, contact_ids, users_password, locale)
