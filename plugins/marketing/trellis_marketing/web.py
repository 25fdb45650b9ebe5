"""REST APIs and admin views of the marketing plugin."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request
from flask_babel import gettext as _
from flask_appbuilder.actions import action
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import fields, validate
from wtforms import SelectField

from sqlalchemy import select

from trellis import conditions, rules, templating
from trellis.api import model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.forms import JSONField
from trellis.i18n import lazy
from trellis.views import TrellisModelView
from trellis.models import Contact
from trellis_marketing import campaigns, metrics, segments
from trellis_marketing.models import (AB_METRICS, CAMPAIGN_STATUSES, SEGMENT_CHANGES,
                                      SEGMENT_KINDS, TRIGGER_KINDS, Campaign, EmailTemplate,
                                      Journey, JourneyEnrolment, Message, Segment)

# ------------------------------------------------------------------ segments

SEGMENT_COLUMNS = ["name", "description", "kind", "rules", "emit_events"]


class _SegmentApiBase:
    def post_add(self, item: Segment) -> None:
        """A static segment takes its snapshot when it is created."""
        if item.kind == "static":
            segments.snapshot(db.session, item)
            db.session.commit()


SegmentApi = model_api(
    Segment, "segment", SEGMENT_COLUMNS, read_only=["owner_id", "member_count", "evaluated_at",
                                                    "created_on"],
    search=["name", "kind"], tag="Marketing: Segments", optional_columns=["kind", "emit_events"],
    validators_columns={"kind": validate.OneOf(SEGMENT_KINDS,
                                               error=f"Must be one of: "
                                                     f"{', '.join(SEGMENT_KINDS)}.")})
SegmentApi.post_add = _SegmentApiBase.post_add  # type: ignore[attr-defined]


def _body() -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None, {"_schema": ["The body must be a JSON object."]}
    return body, {}


def _limit(value: Any) -> tuple[int, dict[str, list[str]]]:
    if value is None:
        return 10, {}
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 0 <= value <= segments.MAX_PREVIEW:
        if isinstance(value, str) and value.isdigit() and int(value) <= segments.MAX_PREVIEW:
            return int(value), {}
        return 0, {"limit": [f"Must be a whole number from 0 to {segments.MAX_PREVIEW}."]}
    return value, {}


class SegmentToolsApi(BaseApi):
    """``/api/v1/segment/…``: preview a condition tree or a saved segment, refresh
    a static segment's snapshot, list the condition types for the rule builder."""

    resource_name = "segment"
    class_permission_name = "marketing.Segment"
    method_permission_name = {"preview_rules": "read", "preview": "read",
                              "snapshot": "write", "condition_types": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Marketing: Segments"

    @expose("/_preview", methods=["POST"])
    @protect()
    @safe
    @permission_name("preview_rules")
    def preview_rules(self):
        """Preview an unsaved condition tree: how many contacts, and the first ones.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [rules]
                  properties:
                    rules: {type: object}
                    limit: {type: integer, minimum: 0, maximum: 100}
          responses:
            200: {description: "count and rows (id, first_name, last_name, email, company)"}
            400: {$ref: '#/components/responses/400'}
        """
        body, errors = _body()
        if body is None:
            return self.response_400(message=errors)
        limit, errors = _limit(body.get("limit"))
        if "rules" not in body:
            errors["rules"] = ["Missing data for required field."]
        else:
            errors.update(segments.rules_errors(body["rules"]))
        if errors:
            return self.response_400(message=errors)
        return self.response(200, **segments.preview(
            db.session, conditions.compile(body["rules"]), limit))

    @expose("/<int:pk>/preview", methods=["GET"])
    @protect()
    @safe
    @permission_name("preview")
    def preview(self, pk: int):
        """Preview a saved segment (dynamic: evaluated now; static: its snapshot).
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          - {in: query, name: limit, schema: {type: integer, minimum: 0, maximum: 100}}
          responses:
            200: {description: "count and rows"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        segment = db.session.get(Segment, pk) if pk < 2**31 else None
        if segment is None:
            return self.response_404()
        limit, errors = _limit(request.args.get("limit"))
        if errors:
            return self.response_400(message=errors)
        return self.response(200, kind=segment.kind, **segments.preview(
            db.session, segments.members(segment), limit))

    @expose("/<int:pk>/snapshot", methods=["POST"])
    @protect()
    @safe
    @permission_name("snapshot")
    def snapshot(self, pk: int):
        """Take a static segment's snapshot again (its members now).
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: "member_count"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        segment = db.session.get(Segment, pk) if pk < 2**31 else None
        if segment is None:
            return self.response_404()
        if segment.kind != "static":
            return self.response_400(message={"kind": ["Only a static segment has a "
                                                       "snapshot."]})
        count = segments.snapshot(db.session, segment)
        db.session.commit()
        return self.response(200, member_count=count)

    @expose("/_condition_types", methods=["GET"])
    @protect()
    @safe
    @permission_name("condition_types")
    def condition_types(self):
        """The condition types and operators the rule builder offers.
        ---
        get:
          responses:
            200: {description: "types and operators"}
        """
        return self.response(200, types=conditions.describe(),
                             operators={k: list(v) for k, v in conditions.OPERATORS.items()})


class SegmentView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Segment)
    translated_values = {"kind": SEGMENT_KINDS}
    list_columns = ["name", "kind", "member_count", "evaluated_at"]
    show_columns = ["name", "description", "kind", "rules", "member_count", "evaluated_at",
                    "emit_events", "tracked_since", "owner", "created_on"]
    add_columns = edit_columns = ["name", "description", "kind"]
    base_permissions = ["can_read"]


# ------------------------------------------------------------------ templates & campaigns


def template_validate(template: EmailTemplate) -> dict[str, list[str]]:
    """``EmailTemplate`` validate: every part parses in the sandbox."""
    errors: dict[str, list[str]] = {}
    for name in ("subject", "text_body", "html_body"):
        source = getattr(template, name)
        if source is None:
            if name != "html_body":
                errors[name] = ["Missing data for required field."]
            continue
        problems = templating.check(source)
        if problems:
            errors[name] = problems
    return errors


def campaign_validate(campaign: Campaign) -> dict[str, list[str]]:
    """``Campaign`` validate: A/B settings in range."""
    errors: dict[str, list[str]] = {}
    if campaign.ab_metric is not None and campaign.ab_metric not in AB_METRICS:
        errors["ab_metric"] = [f"Must be one of: {', '.join(AB_METRICS)}."]
    if campaign.ab_test_percent is not None and not 0 <= campaign.ab_test_percent <= 100:
        errors["ab_test_percent"] = ["Must be from 0 to 100."]
    if campaign.template_b_id is not None and campaign.template_b_id == campaign.template_id:
        errors["template_b_id"] = ["Must differ from template_id."]
    if campaign.conversion_days is not None and not 0 <= campaign.conversion_days <= 365:
        errors["conversion_days"] = ["Must be from 0 to 365."]
    if campaign.cost is not None and campaign.cost < 0:
        errors["cost"] = ["Must not be negative."]
    return errors


def campaign_before_save(session: Any, campaign: Campaign, action: str) -> None:
    """``Campaign`` before_save: defaults; a campaign with a date is scheduled."""
    if action == "deleted":
        return
    campaign.ab_metric = campaign.ab_metric or "opened"
    if campaign.status in (None, "draft") and campaign.scheduled_at is not None:
        campaign.status = "scheduled"
    elif campaign.status == "scheduled" and campaign.scheduled_at is None:
        campaign.status = "draft"
    campaign.status = campaign.status or "draft"


TemplateApi = model_api(EmailTemplate, "email_template", ["name", "subject", "text_body",
                                                          "html_body"],
                        read_only=["created_on", "updated_on"], search=["name"],
                        tag="Marketing: Templates")

CAMPAIGN_COLUMNS = ["name", "segment_id", "template_id", "template_b_id", "ab_test_percent",
                    "ab_metric", "ab_wait_hours", "scheduled_at", "cost", "conversion_days"]
CampaignApi = model_api(
    Campaign, "campaign", CAMPAIGN_COLUMNS,
    read_only=["status", "ab_winner", "started_at", "finished_at", "owner_id", "created_on"],
    search=["name", "status", "segment_id"], tag="Marketing: Campaigns",
    optional_columns=["ab_test_percent", "ab_metric", "ab_wait_hours", "cost",
                      "conversion_days"],
    validators_columns={"ab_metric": validate.OneOf(AB_METRICS, error=f"Must be one of: "
                                                    f"{', '.join(AB_METRICS)}."),
                        "ab_test_percent": validate.Range(0, 100),
                        "ab_wait_hours": validate.Range(0, 24 * 30),
                        "conversion_days": validate.Range(0, 365)})

MessageApi = model_api(
    Message, "campaign_message",
    [], read_only=["campaign_id", "journey_id", "contact_id", "email", "variant", "status",
                   "sent_at", "opened_at", "clicked_at", "unsubscribed_at", "bounced_at",
                   "error"],
    search=["campaign_id", "journey_id", "contact_id", "status"], tag="Marketing: Messages",
    include_route_methods={"get_list", "get", "info"})


class TemplateToolsApi(BaseApi):
    """``POST /api/v1/email_template/<id>/preview`` with ``{"contact_id": N}``: the
    template rendered for that contact (subject, text, HTML)."""

    resource_name = "email_template"
    class_permission_name = "marketing.EmailTemplate"
    method_permission_name = {"preview": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Marketing: Templates"

    @expose("/<int:pk>/preview", methods=["POST"])
    @protect()
    @safe
    @permission_name("preview")
    def preview(self, pk: int):
        """Render a template for a chosen contact.
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [contact_id]
                  properties:
                    contact_id: {type: integer}
          responses:
            200: {description: "subject, text, html"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        template = db.session.get(EmailTemplate, pk) if pk < 2**31 else None
        if template is None:
            return self.response_404()
        body, errors = _body()
        if body is None:
            return self.response_400(message=errors)
        contact_id = body.get("contact_id")
        if isinstance(contact_id, bool) or not isinstance(contact_id, int) \
                or not 0 < contact_id < 2**31:
            return self.response_400(message={"contact_id": ["Not a valid integer."]})
        visible = db.session.scalar(rules.restrict(
            select(Contact.id).where(Contact.id == contact_id), Contact))
        if visible is None:
            return self.response_400(message={"contact_id": [f"No contact with id "
                                                             f"{contact_id}."]})
        context = templating.merge_context(db.session, [contact_id])[contact_id]
        context = {**context, "unsubscribe_url": "#unsubscribe", "campaign": {"name": ""}}
        try:
            return self.response(200, subject=templating.render(template.subject, context),
                                 text=templating.render(template.text_body, context),
                                 html=templating.render(template.html_body, context, html=True)
                                 if template.html_body else None)
        except templating.RenderError as exc:
            return self.response_400(message={"template": [str(exc)]})


class CampaignToolsApi(BaseApi):
    """``POST /api/v1/campaign/<id>/send``: start sending now;
    ``GET /api/v1/campaign/<id>/metrics`` and ``/_metrics``: the figures."""

    resource_name = "campaign"
    class_permission_name = "marketing.Campaign"
    method_permission_name = {"send": "write", "metrics": "read", "all_metrics": "read"}

    @expose("/<int:pk>/metrics", methods=["GET"])
    @protect()
    @safe
    @permission_name("metrics")
    def metrics(self, pk: int):
        """A campaign's metrics (sent, delivered, opened, clicked, unsubscribed,
        bounced, ctr, open_rate, conversions, conversion_rate, revenue, cost, roi).
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: "the metrics"}
            404: {$ref: '#/components/responses/404'}
        """
        found = metrics.campaign_metrics(db.session, [pk]) if pk < 2**31 else {}
        if pk not in found:
            return self.response_404()
        return self.response(200, **found[pk])

    @expose("/_metrics", methods=["GET"])
    @protect()
    @safe
    @permission_name("all_metrics")
    def all_metrics(self):
        """Every campaign's metrics, newest first.
        ---
        get:
          responses:
            200: {description: "result: [{id, name, status, ...metrics}]"}
        """
        names = db.session.execute(select(Campaign.id, Campaign.name, Campaign.status)
                                   .order_by(Campaign.id.desc()).limit(200)).all()
        found = metrics.campaign_metrics(db.session, [n[0] for n in names])
        return self.response(200, result=[{"id": i, "name": name, "status": status,
                                           **found.get(i, {})} for i, name, status in names])
    allow_browser_login = True
    openapi_spec_tag = "Marketing: Campaigns"

    @expose("/<int:pk>/send", methods=["POST"])
    @protect()
    @safe
    @permission_name("send")
    def send(self, pk: int):
        """Start sending a draft or scheduled campaign (once).
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: "started, queued"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        campaign = db.session.get(Campaign, pk) if pk < 2**31 else None
        if campaign is None:
            return self.response_404()
        if campaign.status not in ("draft", "scheduled"):
            return self.response_400(message={"status": [f"The campaign is already "
                                                         f"{campaign.status}."]})
        result = campaigns.start(db.session, pk)
        db.session.commit()
        return self.response(200, **result)


class TemplateView(TrellisModelView):
    datamodel = TrellisSQLAInterface(EmailTemplate)
    list_columns = ["name", "subject", "updated_on"]
    add_columns = edit_columns = show_columns = ["name", "subject", "text_body", "html_body"]


class CampaignView(TrellisModelView):
    """Campaigns; the *Send now* action starts draft or scheduled ones (``can_write``)."""

    datamodel = TrellisSQLAInterface(Campaign)
    translated_values = {"status": CAMPAIGN_STATUSES}
    list_columns = ["name", "segment", "template", "status", "started_at", "finished_at"]
    add_columns = edit_columns = ["name", "segment", "template", "template_b",
                                  "ab_test_percent", "ab_metric", "ab_wait_hours",
                                  "scheduled_at", "cost", "conversion_days"]
    show_columns = [*add_columns, "status", "ab_winner", "started_at", "finished_at"]


    @action("send_now", "Send now", "Start sending the selected campaigns now?",
            "fa-paper-plane")
    def send_now(self, items: Any):
        items = items if isinstance(items, list) else [items]
        started = 0
        for item in items:
            started += int(campaigns.start(db.session, item.id)["started"])
            db.session.commit()
        flash(_("%(started)s campaign(s) started; %(skipped)s were already sent or sending.",
                started=started, skipped=len(items) - started), "info")
        return redirect(self.get_redirect())


# ------------------------------------------------------------------ journeys

JourneyApi = model_api(
    Journey, "journey", ["name", "active", "trigger_kind", "trigger_activity_type",
                         "trigger_payload", "trigger_event", "trigger_segment_id",
                         "trigger_segment_change", "allow_reentry", "steps", "cost",
                         "conversion_days"],
    read_only=["created_on"], search=["name", "active", "trigger_kind"],
    tag="Marketing: Journeys",
    optional_columns=["active", "trigger_kind", "trigger_segment_change", "allow_reentry", "cost",
                      "conversion_days"],
    validators_columns={"trigger_kind": validate.OneOf(TRIGGER_KINDS, error=f"Must be one of: "
                                                       f"{', '.join(TRIGGER_KINDS)}."),
                        "trigger_segment_change": validate.OneOf(
                            SEGMENT_CHANGES, error=f"Must be one of: {', '.join(SEGMENT_CHANGES)}.")})

EnrolmentApi = model_api(
    JourneyEnrolment, "journey_enrolment", [],
    read_only=["journey_id", "contact_id", "entry_no", "status", "step", "step_started_at",
               "entered_at", "finished_at", "exit_reason", "context"],
    search=["journey_id", "contact_id", "status", "step"], tag="Marketing: Journeys",
    include_route_methods={"get_list", "get", "info"})


class JourneyToolsApi(BaseApi):
    """``GET /api/v1/journey/<id>/metrics``: a journey's e-mail metrics and where
    its contacts are."""

    resource_name = "journey"
    class_permission_name = "marketing.Journey"
    method_permission_name = {"metrics": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Marketing: Journeys"

    @expose("/<int:pk>/metrics", methods=["GET"])
    @protect()
    @safe
    @permission_name("metrics")
    def metrics(self, pk: int):
        """A journey's metrics and enrolments by status.
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: "the metrics and enrolments {active, done, exited}"}
            404: {$ref: '#/components/responses/404'}
        """
        found = metrics.journey_metrics(db.session, [pk]) if pk < 2**31 else {}
        if pk not in found:
            return self.response_404()
        from sqlalchemy import func

        states = dict(db.session.execute(
            select(JourneyEnrolment.status, func.count()).where(
                JourneyEnrolment.journey_id == pk).group_by(JourneyEnrolment.status)).all())
        return self.response(200, enrolments=states, **found[pk])


JOURNEY_STEPS_HELP = (
    'A JSON list of steps, run in order, e.g. [{"type": "wait_until", "until": "purchase", '
    '"product": "$trigger.product_id", "hours": 24, "then": "exit"}, {"type": "send_email", '
    '"template_id": 1}, {"type": "action", "action": "core.add_tag", "params": {"tag": "x"}}]. '
    "Types: wait, wait_until, condition, send_email, action, webhook (docs/marketing.md).")


class JourneyView(TrellisModelView):
    """Journeys: a marketer adds and edits them here (steps as JSON, checked by the
    journey's rules, each error under its field) or through the API."""

    datamodel = TrellisSQLAInterface(Journey)
    translated_values = {"trigger_kind": TRIGGER_KINDS,
                         "trigger_segment_change": SEGMENT_CHANGES}
    list_columns = ["name", "active", "trigger_kind", "trigger_activity_type", "trigger_event",
                    "trigger_segment"]
    add_columns = edit_columns = [
        "name", "active", "trigger_kind", "trigger_activity_type", "trigger_payload",
        "trigger_event", "trigger_segment", "trigger_segment_change", "allow_reentry", "steps",
        "cost", "conversion_days"]
    show_columns = [*add_columns, "created_on"]
    add_form_extra_fields = edit_form_extra_fields = {
        "trigger_kind": SelectField("Trigger", choices=[(k, lazy(k)) for k in TRIGGER_KINDS],
                                    default="activity"),
        "trigger_segment_change": SelectField("Segment change", default="entered",
                                              choices=[(c, lazy(c)) for c in SEGMENT_CHANGES]),
        "trigger_payload": JSONField("Trigger payload", rows=2),
        "steps": JSONField("Steps", rows=12),
    }
    description_columns = {
        "trigger_kind": "activity: a timeline activity of a type; event: a Trellis event with a "
                        "contact; segment: contacts entering or leaving a segment",
        "trigger_payload": 'Activity trigger only: payload keys and values to match, as JSON, '
                           'e.g. {"product_id": 5}',
        "steps": JOURNEY_STEPS_HELP,
    }

