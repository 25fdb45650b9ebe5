"""Trellis Service: tickets with SLAs, multichannel intake, knowledge base and
satisfaction surveys.

Where things are: ``models.py`` (tables), ``behaviour.py`` (rules on every
save: defaults, status workflow, first response), ``assignment.py``
(round-robin / least-open within a team, skipping away agents), ``sla.py``
(due times in business hours, pause while pending, the periodic check),
``timeline.py`` (ticket events on the customer's Activity timeline),
``email_channel.py`` (inbound e-mail endpoint, threading, replies by SMTP),
``kb.py`` (knowledge base: search, suggestions, the public help centre),
``survey.py`` (satisfaction survey, CSAT, the satisfaction feature),
``reports.py`` and ``widgets.py`` (reports in SQL, dashboard widgets),
``canned.py`` (canned responses with merge fields), ``autoclose.py``,
``webform.py`` (the public, rate-limited web form),
``attachments.py`` (safe ticket attachments),
``portal.py`` (the customer portal),
``demo.py`` (demo data),
``web.py`` (views and REST APIs).  See plugins/service/README.md and
docs/service.md.
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
)

__version__ = "0.1.0"

class ServiceSettings(Schema):
    auto_close_days = fields.Integer(
        load_default=7, validate=validate.Range(min=1, max=90),
        metadata={"label": "Close resolved tickets after (days)"})
    survey_on_resolve = fields.Boolean(
        load_default=True, metadata={"label": "Send a satisfaction survey on resolve"})
    assignment_mode = fields.String(
        load_default="round_robin",
        validate=validate.OneOf(["round_robin", "least_open", "off"]),
        metadata={"label": "Automatic assignment within the ticket's team",
                  "description": "round_robin, least_open (fewest unresolved tickets) or off"})
    sla_tier_feature = fields.String(
        load_default="customer_tier", validate=validate.Length(max=100),
        metadata={"label": "Customer feature holding the customer's tier for SLA policies",
                  "description": "a text feature offered by another plugin (e.g. scoring); "
                                 "policies with that tier apply to its customers"})
    sla_warn_minutes = fields.Integer(
        load_default=60, validate=validate.Range(min=0, max=14400),
        metadata={"label": "Flag tickets this many business minutes before an SLA runs out"})
    escalate_raise_priority = fields.Boolean(
        load_default=True, metadata={"label": "Raise the priority of a ticket that breaches its SLA"})
    inbound_email_secret = fields.String(
        load_default="", validate=validate.Length(max=200),
        metadata={"label": "Secret of the inbound e-mail endpoint",
                  "description": "sent as X-Trellis-Inbound-Token to POST /service/inbound/email; "
                                 "empty: the endpoint is off"})
    attachment_max_mb = fields.Integer(
        load_default=10, validate=validate.Range(min=1, max=50),
        metadata={"label": "Largest attachment accepted (MB)"})
    escalate_reassign = fields.Boolean(
        load_default=False,
        metadata={"label": "Hand a ticket that breaches its SLA to its team's manager"})


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Service", description="Tickets with SLAs, multichannel intake, knowledge base and satisfaction surveys.",
                    depends=[], soft_depends=[], icon="fa-life-ring")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return ServiceSettings


WORK = ["service.Ticket", "service.TicketMessage", "service.Article", "core.Contact", "core.Account",
        "core.Activity", "core.Note", "core.Tag", "core.Notification", "core.Preference",
        "core.TwoFactor"]
CONFIG = ["service.Category", "service.SlaPolicy", "service.AgentStatus",
          "service.CannedResponse"]
READ_ONLY = ["service.Overview", "service.Survey", "service.Report",
             "service.ArticleVersion", "core.Search",
             "core.Dashboard"]


def _grants(write: list[str], read: list[str]) -> list[tuple[str, str]]:
    return ([(p, r) for r in write for p in ("can_read", "can_write")]
            + [("can_read", r) for r in read])


@hookimpl
def trellis_models() -> list[ModelSpec]:
    from trellis_service import behaviour as b
    from trellis_service import canned, kb, sla
    from trellis_service import models as m

    return [
        ModelSpec(m.Ticket, "ticket", "Ticket", owner_field="assignee_id",
                  contact_field="contact_id", searchable=("subject",),
                  before_save=b.ticket_before_save, validate=b.ticket_validate),
        ModelSpec(m.TicketMessage, "ticket_message", "Ticket message",
                  parent=("ticket_id", m.Ticket), before_save=b.message_before_save,
                  validate=b.message_validate),
        ModelSpec(m.Category, "service_category", "Ticket category", searchable=("name",)),
        ModelSpec(m.SlaPolicy, "sla_policy", "SLA policy", validate=sla.policy_validate),
        ModelSpec(m.AgentStatus, "agent_status", "Agent availability"),
        ModelSpec(m.Survey, "ticket_survey", "Satisfaction survey", contact_field="contact_id",
                  parent=("ticket_id", m.Ticket)),
        ModelSpec(m.CannedResponse, "canned_response", "Canned response", searchable=("name",),
                  validate=canned.canned_validate),
        ModelSpec(m.Attachment, "ticket_attachment", "Ticket attachment",
                  parent=("ticket_id", m.Ticket), audited=False),
        ModelSpec(m.Article, "kb_article", "Knowledge-base article", searchable=("title",),
                  before_save=kb.article_before_save, validate=kb.article_validate),
        ModelSpec(m.ArticleVersion, "kb_article_version", "Knowledge-base article version",
                  audited=False),
    ]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    from trellis_service import web

    return [
        ViewSpec(web.TicketView, "Tickets", icon="fa-ticket-alt"),
        ViewSpec(web.TicketMessageView),
        ViewSpec(web.ArticleView, "Knowledge base", icon="fa-book"),
        ViewSpec(web.SurveyView, "Satisfaction", icon="fa-smile"),
        ViewSpec(web.ArticleVersionView),
        ViewSpec(web.CannedResponseView, "Canned responses", icon="fa-comment-dots"),
        ViewSpec(web.CategoryView, "Ticket categories", icon="fa-tags"),
        ViewSpec(web.SlaPolicyView, "SLA policies", icon="fa-stopwatch"),
        ViewSpec(web.AgentStatusView, "Agent availability", icon="fa-user-clock"),
        ViewSpec(overview_view("service"), "Service overview", icon="fa-life-ring"),
    ]


@hookimpl
def trellis_apis() -> list[type]:
    from trellis_service import web

    return [web.TicketApi, web.TicketMessageApi, web.CategoryApi, web.SlaPolicyApi,
            web.AgentStatusApi, web.ArticleApi, web.SurveyApi, web.ServiceReportApi,
            web.ArticleVersionApi,
            web.CannedResponseApi,
            overview_api("service")]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [
        # agents see the tickets assigned to anyone in their teams
        RoleSpec("Service Agent", _grants(WORK, CONFIG + READ_ONLY), scope="team"),
        RoleSpec("Service Manager", _grants(WORK + CONFIG, READ_ONLY), scope="all"),
        RoleSpec("CRM User", [("can_read", "service.Overview")]),
        RoleSpec("Manager", [("can_read", r) for r in WORK + CONFIG + READ_ONLY]),
    ]


@hookimpl
def trellis_demo_data(session: Any, rng: Any, contact_ids: list[int],
                      users_password: str | None, locale: str) -> dict[str, int]:
    from trellis_service.demo import load

    return load(session, rng, contact_ids, users_password, locale)


@hookimpl
def trellis_dashboard_widgets() -> list:
    from trellis_service import widgets

    return widgets.widgets()


@hookimpl
def trellis_event_handlers() -> list[EventHandler]:
    from trellis_service import email_channel, survey, timeline

    return [EventHandler("ticket.opened", timeline.on_opened, background=True),
            EventHandler("ticket.status_changed", timeline.on_status_changed, background=True),
            EventHandler("ticket.message_added", timeline.on_message, background=True),
            EventHandler("ticket.message_added", email_channel.send_reply, background=True),
            EventHandler("ticket.resolved", survey.on_resolved, background=True)]


@hookimpl
def trellis_blueprints() -> list[BlueprintSpec]:
    from trellis_service.email_channel import inbound
    from trellis_service.kb import help_centre
    from trellis_service.survey import survey_pages
    from trellis_service.portal import portal, portal_login
    from trellis_service.webform import form

    return [BlueprintSpec(inbound, public=True), BlueprintSpec(help_centre, public=True),
            BlueprintSpec(survey_pages, public=True), BlueprintSpec(form, public=True),
            BlueprintSpec(portal, public=True), BlueprintSpec(portal_login, public=True)]


@hookimpl
def trellis_app_ready(app: Any) -> None:
    from trellis_service import portal, webform

    webform.limit(app)
    portal.limit(app)


@hookimpl
def trellis_customer_features() -> list:
    from trellis.specs import FeatureSpec
    from trellis_service.survey import satisfaction_feature

    return [FeatureSpec("satisfaction", "Average satisfaction (1–5)", satisfaction_feature,
                        description="Mean rating of the customer's answered ticket surveys.")]


@hookimpl
def trellis_jobs() -> list[JobSpec]:
    from trellis_service import autoclose, sla

    return [JobSpec("service.check_sla", sla.check_sla,
                    description="flag, notify and escalate tickets at risk of or past their SLA"),
            JobSpec("service.auto_close", autoclose.auto_close,
                    description="close resolved tickets after auto_close_days")]


@hookimpl
def trellis_schedules() -> list[ScheduleSpec]:
    return [ScheduleSpec("service.check_sla", interval=300),
            ScheduleSpec("service.auto_close", interval=3600)]


@hookimpl
def trellis_actions() -> list:
    from trellis_service.actions import actions

    return actions()


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
