"""Admin views and REST APIs of the sales plugin."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import request
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect

from trellis.api import API_PERMISSIONS, TrellisModelApi, model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.validation import RecordInvalid
from trellis.views import TrellisModelView
from trellis_sales import reports
from trellis_sales.conversion import convert_lead
from trellis_sales.convert_page import ConvertLeadAction
from trellis_sales.sla import SlaStateMixin
from trellis_sales.plans import ApplyPlanAction
from trellis_sales.models import (
    LEAD_SOURCES,
    LEAD_STATUSES,
    TASK_KINDS,
    AssignmentRule,
    Deal,
    DealLine,
    DealStageHistory,
    Lead,
    Order,
    OrderLine,
    Pipeline,
    Product,
    Stage,
    Task,
)

# ------------------------------------------------------------------ views


class StageView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Stage)
    list_columns = ["pipeline", "position", "name", "probability", "is_won", "is_lost"]
    add_columns = edit_columns = list_columns
    base_order = ("position", "asc")


class PipelineView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Pipeline)
    list_columns = add_columns = edit_columns = ["name", "is_default"]
    related_views = [StageView]


class StageHistoryView(TrellisModelView):
    datamodel = TrellisSQLAInterface(DealStageHistory)
    base_permissions = ["can_read"]
    list_columns = ["stage", "entered_at", "left_at", "days_in_stage", "user_id"]
    label_columns = {"days_in_stage": "Days in stage"}
    base_order = ("entered_at", "asc")


class DealLineView(TrellisModelView):
    datamodel = TrellisSQLAInterface(DealLine)
    list_columns = ["product", "quantity", "unit_price", "total"]
    add_columns = edit_columns = ["deal", "product", "quantity", "unit_price"]


class DealView(ApplyPlanAction, TrellisModelView):
    datamodel = TrellisSQLAInterface(Deal)
    list_columns = ["name", "account", "stage", "amount", "currency", "probability",
                    "expected_revenue", "expected_close", "owner"]
    search_columns = ["name", "account", "contact", "pipeline", "stage", "owner",
                      "expected_close", "amount"]
    add_columns = edit_columns = ["name", "account", "contact", "pipeline", "stage", "amount",
                                  "currency", "probability", "expected_close", "owner",
                                  "lost_reason"]
    show_columns = add_columns + ["expected_revenue", "lines_total", "won_at", "lost_at",
                                  "created_on"]
    label_columns = {"expected_revenue": "Expected revenue (amount × probability)",
                     "lines_total": "Total of the product lines"}
    related_views = [DealLineView, StageHistoryView]


class LeadView(ConvertLeadAction, ApplyPlanAction, TrellisModelView):
    datamodel = TrellisSQLAInterface(Lead)
    translated_values = {"status": LEAD_STATUSES, "source": LEAD_SOURCES}
    list_columns = ["first_name", "last_name", "company", "email", "source", "status",
                    "score", "owner", "created_on", "response_due_at"]
    search_columns = ["first_name", "last_name", "company", "email", "source", "status",
                      "owner", "country", "industry", "response_due_at", "first_contacted_at"]
    label_columns = {"response_due_at": "Respond by", "first_contacted_at": "First contacted"}
    add_columns = edit_columns = ["first_name", "last_name", "email", "phone", "company",
                                  "title", "industry", "country", "source", "status", "owner"]
    base_order = ("created_on", "desc")


class AssignmentRuleView(TrellisModelView):
    datamodel = TrellisSQLAInterface(AssignmentRule)
    list_columns = add_columns = edit_columns = ["position", "field", "value", "team", "active"]
    description_columns = {
        "field": "any, country, industry or source; the first matching active rule wins",
        "value": "the value to match (ignoring case), e.g. DE; empty for 'any'",
    }
    base_order = ("position", "asc")


class ProductView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Product)
    list_columns = add_columns = edit_columns = ["sku", "name", "price", "currency", "active"]


class OrderLineView(TrellisModelView):
    datamodel = TrellisSQLAInterface(OrderLine)
    list_columns = ["product", "quantity", "unit_price", "total"]
    add_columns = edit_columns = ["order", "product", "quantity", "unit_price"]


class OrderView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Order)
    list_columns = ["id", "ordered_at", "contact", "account", "total", "currency", "deal"]
    add_columns = edit_columns = ["contact", "account", "ordered_at", "currency", "total"]
    base_order = ("ordered_at", "desc")
    related_views = [OrderLineView]


class TaskView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Task)
    translated_values = {"kind": TASK_KINDS}
    list_columns = ["kind", "subject", "due_at", "done_at", "owner", "deal", "contact", "lead"]
    add_columns = edit_columns = ["kind", "subject", "notes", "due_at", "done_at", "owner",
                                  "deal", "contact", "lead"]
    base_order = ("due_at", "asc")


# ------------------------------------------------------------------ APIs


def _api(model: type, name: str, columns: list[str], **kwargs) -> type[TrellisModelApi]:
    return model_api(model, name, columns, tag=f"Sales: {model.__name__}s", **kwargs)


PipelineApi = _api(Pipeline, "pipeline", ["name", "is_default"])
AssignmentRuleApi = _api(AssignmentRule, "assignment_rule",
                         ["position", "field", "value", "team_id", "active"],
                         optional_columns=["position", "field", "active"])
StageApi = _api(Stage, "stage", ["pipeline_id", "name", "position", "probability", "is_won",
                                 "is_lost"])
DealApi = _api(Deal, "deal", ["name", "account_id", "contact_id", "pipeline_id", "stage_id",
                              "amount", "currency", "probability", "expected_close",
                              "owner_id", "lost_reason"],
               read_only=["won_at", "lost_at", "created_on", "probability_overridden",
                          "expected_revenue", "lines_total"],
               search=["name", "account_id", "contact_id", "pipeline_id", "stage_id",
                       "owner_id", "expected_close", "amount", "won_at", "lost_at"],
               optional_columns=["pipeline_id", "stage_id", "currency", "probability"])
DealLineApi = _api(DealLine, "deal_line", ["deal_id", "product_id", "quantity", "unit_price"],
                   read_only=["total"], optional_columns=["quantity", "unit_price"])
StageHistoryApi = _api(DealStageHistory, "deal_stage_history",
                       ["deal_id", "stage_id", "entered_at", "left_at", "user_id"],
                       read_only=["days_in_stage"],
                       include_route_methods={"get_list", "get", "info"},
                       class_permission_name="sales.DealStageHistory")
ProductApi = _api(Product, "product", ["sku", "name", "price", "currency", "active"])
OrderApi = _api(Order, "order", ["contact_id", "account_id", "deal_id", "owner_id",
                                 "ordered_at", "currency", "total"],
                optional_columns=["currency", "total"])
OrderLineApi = _api(OrderLine, "order_line", ["order_id", "product_id", "quantity",
                                              "unit_price"], read_only=["total"],
                    optional_columns=["quantity", "unit_price"])
TaskApi = _api(Task, "task", ["kind", "subject", "notes", "due_at", "done_at", "owner_id",
                              "lead_id", "contact_id", "deal_id"])


class LeadApi(SlaStateMixin, _api(Lead, "lead", ["first_name", "last_name", "email", "phone",
                                                 "company", "title", "industry", "country",
                                                 "source", "status", "owner_id"],
                                  read_only=["score", "created_on", "converted_contact_id",
                                             "converted_deal_id", "response_due_at",
                                             "first_contacted_at", "sla_escalated_at"])):
    method_permission_name = {**API_PERMISSIONS, "convert": "write", "sla_report": "read"}

    @expose("/<int:pk>/convert", methods=["POST"])
    @protect()
    @safe
    @permission_name("convert")
    def convert(self, pk: int):
        """Convert a lead into contact + account + deal (matching existing ones).
        ---
        post:
          parameters:
          - in: path
            name: pk
            schema: {type: integer}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    deal_name: {type: string}
                    amount: {type: number}
                    pipeline_id: {type: integer}
                    create_deal: {type: boolean}
          responses:
            200:
              description: The contact, account and deal ids
            400:
              $ref: '#/components/responses/400'
            404:
              $ref: '#/components/responses/404'
        """
        lead = self.datamodel.get(pk, self._base_filters)
        if lead is None:
            return self.response_404()
        body = request.get_json(silent=True) or {}
        if not isinstance(body, dict):
            return self.response_400(message="the body must be a JSON object")
        try:
            amount = Decimal(str(body["amount"])) if body.get("amount") is not None else None
        except (InvalidOperation, ValueError):
            return self.response_400(message={"amount": ["Not a valid number."]})
        try:
            result = convert_lead(lead, create_deal=bool(body.get("create_deal", True)),
                                  deal_name=body.get("deal_name"), amount=amount,
                                  pipeline_id=body.get("pipeline_id"))
            db.session.commit()
        except RecordInvalid as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        return self.response(200, contact_id=result.contact.id,
                             account_id=result.account.id if result.account else None,
                             deal_id=result.deal.id if result.deal else None,
                             contact_created=result.contact_created,
                             account_created=result.account_created)


class SalesReportApi(BaseApi):
    """``/api/v1/sales_report/<name>``: the sales reports (``trellis_sales.reports``),
    computed in SQL under the user's record rules; bad parameters answer 400."""

    resource_name = "sales_report"
    class_permission_name = "sales.Report"
    method_permission_name = {"index": "read", "report": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Sales: reports"

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("index")
    def index(self):
        """The reports, with their parameters.
        ---
        get:
          responses:
            200: {description: "result: [{name, description, params}]"}
        """
        return self.response(200, result=[
            {"name": name, "description": report.description,
             "params": {p: {"kind": spec.kind, "default": spec.default,
                            **({"choices": list(spec.choices)} if spec.choices else {})}
                        for p, spec in report.params.items()}}
            for name, report in reports.REPORTS.items()])

    @expose("/<name>", methods=["GET"])
    @protect()
    @safe
    @permission_name("report")
    def report(self, name: str):
        """One report: forecast, win_rate, funnel, sales_cycle, time_in_stage,
        lost_reasons, pipeline_velocity, repeat_purchase or quota_attainment.
        ---
        get:
          parameters:
          - {in: path, name: name, schema: {type: string}}
          - {in: query, name: group, schema: {type: string}}
          - {in: query, name: since, schema: {type: string, format: date}}
          - {in: query, name: until, schema: {type: string, format: date}}
          responses:
            200: {description: "result: one row per group (see docs/sales.md)"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        report = reports.REPORTS.get(name)
        if report is None:
            return self.response_404()
        params, errors = reports.parse_params(report, request.args)
        if errors:
            return self.response_400(message=errors)
        return self.response(200, result=report.func(**params))
