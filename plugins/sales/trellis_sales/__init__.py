"""Trellis Sales: leads, deals and pipelines, orders, follow-ups, forecast and reports.

Where things are: ``models.py`` (tables), ``behaviour.py`` (rules on every
save: stage history, probabilities, won/lost, order on won, timeline, events),
``conversion.py`` (lead → contact + account + deal), ``assignment.py``
(round-robin lead assignment), ``sla.py`` (first-response SLA),
``reminders.py`` and ``plans.py`` (follow-up jobs and plans),
``duplicates.py``, ``reports.py``, ``quota.py``, ``widgets.py``, ``board.py``
(the kanban board), ``web.py`` (views and REST APIs), ``customer_data.py``
(purchase lines, features, merge fields and actions for other plugins),
``panels.py`` (the panel on contact and account pages), ``qualify.py``
(qualifies a lead on the scoring plugin's ``scoring.lead_qualified``), ``privacy.py``
(personal-data export and erasure), ``demo.py``.
See plugins/sales/README.md and docs/sales.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marshmallow import Schema, fields, validate

from trellis import hookimpl
from trellis.overview import overview_api, overview_view
from trellis.specs import Manifest, ModelSpec, RoleSpec, ViewSpec

__version__ = "0.1.0"

class SalesSettings(Schema):
    company_currency = fields.String(
        load_default="EUR", validate=validate.Regexp(r"^[A-Z]{3}$", error="Use an ISO 4217 code, e.g. EUR."),
        metadata={"label": "Default currency of new deals and orders",
                  "description": "Reports use the core setting company_currency."})
    stale_deal_days = fields.Integer(
        load_default=14, validate=validate.Range(min=1, max=365),
        metadata={"label": "Days without activity before a deal gets a follow-up task"})
    lead_response_hours = fields.Integer(
        load_default=4, validate=validate.Range(min=1, max=240),
        metadata={"label": "First-response SLA for new leads (business hours)"})
    lead_response_warn_minutes = fields.Integer(
        load_default=60, validate=validate.Range(min=0, max=14400),
        metadata={"label": "Flag leads this many business minutes before the SLA runs out"})
    create_order_on_won = fields.Boolean(
        load_default=True, metadata={"label": "Create the order when a deal is won"})


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Sales", description="Leads, deals and pipelines, orders, follow-ups, forecast and sales reports.",
                    depends=[], soft_depends=[], icon="fa-handshake")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return SalesSettings


SELLING = ["sales.Lead", "sales.Deal", "sales.DealLine", "sales.Task", "sales.Order",
           "sales.OrderLine", "core.Contact", "core.Account", "core.Activity", "core.Note",
           "core.Tag", "core.Consent", "core.Notification", "core.Preference",
           "core.TwoFactor"]
CATALOGUE = ["sales.Pipeline", "sales.Stage", "sales.Product", "sales.AssignmentRule",
             "sales.FollowUpPlan", "sales.FollowUpStep", "sales.Quota", "core.ExchangeRate"]
READ_ONLY = ["sales.DealStageHistory", "sales.Overview", "sales.Report", "core.Search",
             "core.Dashboard"]
#: Sales users run and save reports in the core's report builder.
REPORTING = ["core.ReportBuilder"]


def _grants(write: list[str], read: list[str]) -> list[tuple[str, str]]:
    return ([(p, r) for r in write for p in ("can_read", "can_write")]
            + [("can_read", r) for r in read])


@hookimpl
def trellis_models() -> list[ModelSpec]:
    from trellis_sales import assignment, quota
    from trellis_sales import behaviour as b
    from trellis_sales.duplicates import lead_duplicates
    from trellis_sales import plans
    from trellis_sales import models as m

    return [
        ModelSpec(m.Pipeline, "pipeline", "Pipeline", searchable=("name",)),
        ModelSpec(m.Stage, "stage", "Stage", searchable=("name",)),
        ModelSpec(m.Lead, "lead", "Lead", owner_field="owner_id",
                  searchable=("first_name", "last_name", "email", "company"),
                  before_save=b.lead_before_save, validate=b.lead_validate,
                  duplicates=lead_duplicates),
        ModelSpec(m.Deal, "deal", "Deal", owner_field="owner_id", contact_field="contact_id",
                  searchable=("name",), before_save=b.deal_before_save,
                  validate=b.deal_validate),
        ModelSpec(m.DealStageHistory, "deal_stage_history", "Deal stage history",
                  audited=False, parent=("deal_id", m.Deal)),
        ModelSpec(m.DealLine, "deal_line", "Deal line", before_save=b.line_before_save,
                  validate=b.line_validate, parent=("deal_id", m.Deal)),
        ModelSpec(m.Product, "product", "Product", searchable=("sku", "name")),
        ModelSpec(m.Order, "order", "Order", owner_field="owner_id", contact_field="contact_id",
                  before_save=b.order_before_save, validate=b.order_validate),
        ModelSpec(m.OrderLine, "order_line", "Order line", before_save=b.line_before_save,
                  validate=b.line_validate, parent=("order_id", m.Order)),
        ModelSpec(m.AssignmentRule, "assignment_rule", "Lead assignment rule",
                  before_save=assignment.rule_before_save, validate=assignment.rule_validate),
        ModelSpec(m.Task, "task", "Task", owner_field="owner_id", contact_field="contact_id",
                  searchable=("subject",), before_save=b.task_before_save,
                  validate=b.task_validate),
        ModelSpec(m.FollowUpPlan, "followup_plan", "Follow-up plan", searchable=("name",)),
        ModelSpec(m.FollowUpStep, "followup_step", "Follow-up plan step",
                  parent=("plan_id", m.FollowUpPlan), validate=plans.step_validate),
        ModelSpec(m.Quota, "quota", "Sales quota", owner_field="user_id",
                  validate=quota.quota_validate),
    ]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    from trellis_sales import board, convert_page, plans, quota, web

    return [
        ViewSpec(web.LeadView, "Leads", icon="fa-user-plus"),
        ViewSpec(web.DealView, "Deals", icon="fa-handshake"),
        ViewSpec(board.PipelineBoardView, "Pipeline board", icon="fa-columns"),
        ViewSpec(web.TaskView, "Follow-ups", icon="fa-tasks"),
        ViewSpec(web.OrderView, "Orders", icon="fa-shopping-cart"),
        ViewSpec(web.ProductView, "Products", icon="fa-box"),
        ViewSpec(web.PipelineView, "Pipelines", icon="fa-stream"),
        ViewSpec(web.AssignmentRuleView, "Lead assignment", icon="fa-random"),
        ViewSpec(quota.QuotaView, "Quotas", icon="fa-bullseye"),
        ViewSpec(web.StageView),
        ViewSpec(web.StageHistoryView),
        ViewSpec(web.DealLineView),
        ViewSpec(web.OrderLineView),
        ViewSpec(convert_page.LeadConvertView),
        *plans.view_specs(),
        ViewSpec(overview_view("sales"), "Sales overview", icon="fa-info-circle"),
    ]


@hookimpl
def trellis_apis() -> list[type]:
    from trellis_sales import plans, quota, web

    return [web.LeadApi, web.DealApi, web.DealLineApi, web.StageHistoryApi, web.TaskApi,
            web.OrderApi, web.OrderLineApi, web.ProductApi, web.PipelineApi, web.StageApi,
            web.AssignmentRuleApi, web.SalesReportApi, quota.QuotaApi,
            overview_api("sales"), *plans.APIS]


@hookimpl
def trellis_dashboard_widgets() -> list:
    from trellis_sales import widgets

    return widgets.widgets()


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [
        RoleSpec("Sales Rep", _grants(SELLING + REPORTING, CATALOGUE + READ_ONLY), scope="own"),
        RoleSpec("Sales Manager", _grants(SELLING + CATALOGUE + REPORTING, READ_ONLY),
                 scope="team"),
        RoleSpec("CRM User", [("can_read", "sales.Overview")]),
        # the core's CRM-wide manager reads every sales record and report
        RoleSpec("Manager", [("can_read", r) for r in SELLING + CATALOGUE + READ_ONLY]),
    ]


@hookimpl
def trellis_demo_data(session, rng, contact_ids, users_password, locale) -> dict[str, int]:
    from trellis_sales.demo import load

    return load(session, rng, contact_ids, users_password, locale)


@hookimpl
def trellis_jobs() -> list:
    from trellis.specs import JobSpec
    from trellis_sales import reminders, sla

    return [JobSpec("sales.check_lead_sla", sla.check_lead_sla,
                    description="flag and escalate leads about to miss their first-response SLA"),
            JobSpec("sales.remind_tasks", reminders.remind_tasks,
                    description="notify owners of tasks due soon and overdue"),
            JobSpec("sales.stale_deals", reminders.stale_deals,
                    description="create follow-up tasks for deals without recent activity")]


@hookimpl
def trellis_schedules() -> list:
    from trellis.specs import ScheduleSpec

    return [ScheduleSpec("sales.check_lead_sla", interval=300),
            ScheduleSpec("sales.remind_tasks", interval=300),
            ScheduleSpec("sales.stale_deals", interval=3600)]


@hookimpl
def trellis_event_handlers() -> list:
    from trellis.specs import EventHandler
    from trellis_sales.qualify import qualify_lead

    # the scoring plugin's lead score crossed its threshold
    return [EventHandler("scoring.lead_qualified", qualify_lead, background=True)]


@hookimpl
def trellis_personal_data(session: Any, contact_id: int) -> dict[str, Any] | None:
    from trellis_sales.privacy import personal_data

    return personal_data(session, contact_id)


@hookimpl
def trellis_erase_personal_data(session: Any, contact_id: int) -> None:
    from trellis_sales.privacy import erase

    erase(session, contact_id)


@hookimpl
def trellis_record_panels() -> list:
    from trellis_sales.panels import panels

    return panels()


@hookimpl
def trellis_purchase_lines() -> Any:
    from trellis_sales.customer_data import purchase_lines

    return purchase_lines()


@hookimpl
def trellis_customer_features() -> list:
    from trellis_sales.customer_data import features

    return features()


@hookimpl
def trellis_merge_fields(session: Any, contact_ids: list[int]) -> dict[int, dict[str, Any]]:
    from trellis_sales.customer_data import merge_fields

    return merge_fields(session, contact_ids)


@hookimpl
def trellis_actions() -> list:
    from trellis_sales.customer_data import actions

    return actions()


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
