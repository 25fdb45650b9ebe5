"""Follow-up plans: cadences such as "call on day 1, e-mail on day 3, meeting on
day 7", kept as a :class:`FollowUpPlan` with its steps and applied to a deal or
a lead in one click.

Applying a plan creates one :class:`Task` per step for the record's owner,
due on day N after today at the start of business of the default business
calendar (``origin="plan"``).  It needs ``can_write`` on the deal or lead and
obeys the record rules: someone who may not see the record gets 404.

* Web: the "Apply follow-up plan" action on a deal's or lead's page leads to a
  small form (``/dealplan/apply/<id>``, ``/leadplan/apply/<id>``).
* REST: ``POST /api/v1/deal/<id>/apply_plan`` and
  ``POST /api/v1/lead/<id>/apply_plan`` with ``{"plan_id": N}``.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, action, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_wtf import FlaskForm
from marshmallow import validate
from sqlalchemy import select
from wtforms.validators import AnyOf, NumberRange

from trellis import rules
from trellis.api import model_api
from trellis.businesshours import default_calendar
from trellis.specs import ViewSpec
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db, utcnow
from trellis.validation import RecordInvalid
from trellis.views import TrellisModelView
from trellis_sales.models import TASK_KINDS, Deal, FollowUpPlan, FollowUpStep, Lead, Task

HERE = Path(__file__).parent
MAX_DAY = 365

# ------------------------------------------------------------------ rules


def step_validate(step: FollowUpStep) -> dict[str, list[str]]:
    """``FollowUpStep`` validate: what a step must be to become a task."""
    errors: dict[str, list[str]] = {}
    if step.kind not in TASK_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(TASK_KINDS)}."]
    if step.day is None or not 0 <= step.day <= MAX_DAY:
        errors["day"] = [f"Must be a day from 0 (today) to {MAX_DAY}."]
    if not (step.subject or "").strip():
        errors["subject"] = ["Must not be empty."]
    return errors


def find_plan(plan_id: Any) -> tuple[FollowUpPlan | None, dict[str, list[str]]]:
    """The plan ``plan_id`` names, or field errors saying why there is none."""
    if plan_id is None:
        return None, {"plan_id": ["Missing data for required field."]}
    if isinstance(plan_id, bool) or not isinstance(plan_id, int):
        if isinstance(plan_id, str) and plan_id.isdigit():
            plan_id = int(plan_id)
        else:
            return None, {"plan_id": ["Not a valid integer."]}
    plan = db.session.get(FollowUpPlan, plan_id)
    if plan is None:
        return None, {"plan_id": [f"No follow-up plan with id {plan_id}."]}
    if not plan.steps:
        return None, {"plan_id": [f"The plan {plan.name!r} has no steps."]}
    return plan, {}


def due_on(day: int, now: datetime | None = None) -> datetime:
    """Start of business, ``day`` days after today, in the default calendar (UTC)."""
    cal = default_calendar(db.session)
    tz = ZoneInfo(cal.timezone or "UTC")
    hours, minutes = (int(p) for p in (cal.day_start or "09:00").split(":"))
    today = (now or utcnow()).astimezone(tz).date()
    return datetime.combine(today + timedelta(days=day), time(hours, minutes),
                            tzinfo=tz).astimezone(timezone.utc)


def create_plan_tasks(plan: FollowUpPlan, record: Deal | Lead) -> list[Task]:
    """Add one task per step of ``plan`` for ``record`` (not committed)."""
    owner_id = record.owner_id
    if owner_id is None:
        user = getattr(g, "user", None)
        owner_id = getattr(user, "id", None)
    tasks = []
    for step in plan.steps:
        task = Task(kind=step.kind, subject=step.subject, due_at=due_on(step.day),
                    owner_id=owner_id, origin="plan")
        if isinstance(record, Deal):
            task.deal_id, task.contact_id = record.id, record.contact_id
        else:
            task.lead_id = record.id
        db.session.add(task)
        tasks.append(task)
    return tasks


def visible(model: type, pk: int) -> Any:
    """The record ``pk`` if the user's record rule lets them see it, else ``None``."""
    return db.session.scalar(rules.restrict(select(model).where(model.id == pk), model))


# ------------------------------------------------------------------ web


class PlanForm(FlaskForm):
    """CSRF only; the plan comes from the ``plan_id`` field."""


class ApplyPlanAction:
    """Mixin for the deal and lead views: an "Apply follow-up plan" action on a
    record's page (needs ``can_write``), leading to the plan form of
    ``<Model>PlanView`` (``DealView`` -> ``DealPlanView``)."""

    def __init__(self, **kwargs: Any) -> None:
        # the action's permission is can_write on the model, not a permission of its own
        self.method_permission_name = {**self.method_permission_name, "apply_plan": "write"}
        super().__init__(**kwargs)

    @action("apply_plan", "Apply follow-up plan", icon="fa-list-ol", multiple=False)
    def apply_plan(self, items: Any):
        item = items[0] if isinstance(items, list) and len(items) == 1 else items
        if item is None or isinstance(item, list):
            abort(404)
        plan_view = type(self).__name__.removesuffix("View") + "PlanView"
        return redirect(url_for(f"{plan_view}.apply", pk=item.id))


class _PlanView(BaseView):
    """``/<kind>plan/apply/<id>``: pick a plan and apply it to one record."""

    model: type = Deal
    record_view = "DealView"
    template_folder = str(HERE / "templates")
    default_view = "index"
    method_permission_name = {"apply": "write", "index": "write"}

    @expose("/")
    @has_access
    def index(self):
        """No record chosen: to the list, where each record's page offers the action."""
        return redirect(url_for(f"{self.record_view}.list"))

    @expose("/apply/<int:pk>", methods=["GET", "POST"])
    @has_access
    def apply(self, pk: int):
        record = visible(self.model, pk)
        if record is None:
            abort(404)
        form = PlanForm()
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            if not form.validate_on_submit():
                errors = {"_form": ["The form expired; please try again."]}
            else:
                plan, errors = find_plan(request.form.get("plan_id") or None)
                if plan is not None:
                    try:
                        tasks = create_plan_tasks(plan, record)
                        db.session.commit()
                        flash(f"Plan {plan.name!r} applied: {len(tasks)} follow-up task(s).",
                              "success")
                        return redirect(url_for(f"{self.record_view}.show", pk=pk))
                    except RecordInvalid as exc:
                        db.session.rollback()
                        errors = exc.messages  # type: ignore[assignment]
        plans = db.session.scalars(select(FollowUpPlan).order_by(FollowUpPlan.name)).all()
        return self.render_template("sales/apply_plan.html", record=record, plans=plans,
                                    form=form, errors=errors,
                                    back=url_for(f"{self.record_view}.show", pk=pk)), \
            400 if errors else 200


class DealPlanView(_PlanView):
    route_base = "/dealplan"
    class_permission_name = "sales.Deal"
    model = Deal
    record_view = "DealView"


class LeadPlanView(_PlanView):
    route_base = "/leadplan"
    class_permission_name = "sales.Lead"
    model = Lead
    record_view = "LeadView"


class FollowUpStepView(TrellisModelView):
    datamodel = TrellisSQLAInterface(FollowUpStep)
    list_columns = ["day", "kind", "subject"]
    add_columns = edit_columns = ["plan", "day", "kind", "subject"]
    base_order = ("day", "asc")
    description_columns = {"day": "days after the plan is applied (0: today, 1: tomorrow)",
                           "kind": ", ".join(TASK_KINDS)}
    validators_columns = {
        "kind": [AnyOf(list(TASK_KINDS), message=f"Must be one of: {', '.join(TASK_KINDS)}.")],
        "day": [NumberRange(0, MAX_DAY, message=f"Must be a day from 0 (today) to {MAX_DAY}.")],
    }


class FollowUpPlanView(TrellisModelView):
    datamodel = TrellisSQLAInterface(FollowUpPlan)
    list_columns = ["name", "description"]
    add_columns = edit_columns = show_columns = ["name", "description"]
    related_views = [FollowUpStepView]


# ------------------------------------------------------------------ REST


class _PlanApi(BaseApi):
    """``POST /api/v1/<deal|lead>/<id>/apply_plan`` with ``{"plan_id": N}``."""

    model: type = Deal
    allow_browser_login = True
    method_permission_name = {"apply_plan": "write"}

    @expose("/<int:pk>/apply_plan", methods=["POST"])
    @protect()
    @safe
    @permission_name("apply_plan")
    def apply_plan(self, pk: int):
        """Apply a follow-up plan: one task per step, for the record's owner.
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [plan_id]
                  properties:
                    plan_id: {type: integer}
          responses:
            201: {description: The ids of the tasks created}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        record = visible(self.model, pk)
        if record is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message={"_schema": ["The body must be a JSON object."]})
        plan, errors = find_plan(body.get("plan_id"))
        if plan is None:
            return self.response_400(message=errors)
        try:
            tasks = create_plan_tasks(plan, record)
            db.session.commit()
        except RecordInvalid as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        return self.response(201, plan_id=plan.id, task_ids=[t.id for t in tasks])


class DealPlanApi(_PlanApi):
    resource_name = "deal"
    class_permission_name = "sales.Deal"
    openapi_spec_tag = "Sales: Deals"
    model = Deal


class LeadPlanApi(_PlanApi):
    resource_name = "lead"
    class_permission_name = "sales.Lead"
    openapi_spec_tag = "Sales: Leads"
    model = Lead


def _plan_api(model: type, name: str, columns: list[str], **kwargs: Any) -> Any:
    return model_api(model, name, columns, tag="Sales: Follow-up plans", **kwargs)


FollowUpPlanApi = _plan_api(FollowUpPlan, "followup_plan", ["name", "description"])
FollowUpStepApi = _plan_api(
    FollowUpStep, "followup_step", ["plan_id", "day", "kind", "subject"],
    optional_columns=["day", "kind"],
    validators_columns={"kind": validate.OneOf(TASK_KINDS,
                                               error=f"Must be one of: {', '.join(TASK_KINDS)}."),
                        "day": validate.Range(0, MAX_DAY, error=f"Must be a day from 0 (today) "
                                                                f"to {MAX_DAY}.")})

#: The APIs the plugin registers (``trellis_apis``).
APIS = [FollowUpPlanApi, FollowUpStepApi, DealPlanApi, LeadPlanApi]


def view_specs() -> list[ViewSpec]:
    """The views the plugin registers (``trellis_views``)."""
    return [ViewSpec(FollowUpPlanView, "Follow-up plans", icon="fa-list-ol"),
            ViewSpec(FollowUpStepView), ViewSpec(DealPlanView), ViewSpec(LeadPlanView)]
