"""Admin views and REST APIs of the service plugin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, request
from flask_babel import lazy_gettext as _l
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import validate
from wtforms import SelectField
from sqlalchemy import select

from trellis.api import API_PERMISSIONS, TrellisModelApi, model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.settings import get_settings
from trellis.views import TrellisModelView
from trellis_service import attachments, canned, kb, reports, sla, survey
from trellis_service.models import (
    ARTICLE_STATUSES,
    CHANNELS,
    MESSAGE_KINDS,
    PRIORITIES,
    STATUSES,
    AgentStatus,
    Article,
    ArticleVersion,
    Attachment,
    CannedResponse,
    Category,
    SlaPolicy,
    Survey,
    Ticket,
    TicketMessage,
)

# ------------------------------------------------------------------ views


class TicketMessageView(TrellisModelView):
    datamodel = TrellisSQLAInterface(TicketMessage)
    translated_values = {"kind": MESSAGE_KINDS}
    list_columns = ["created_on", "kind", "author", "from_email", "body"]
    add_columns = ["ticket", "kind", "body"]
    edit_columns = ["body"]
    show_columns = ["ticket", "kind", "author", "from_email", "body", "message_id", "sent_at",
                    "created_on"]
    add_form_extra_fields = {
        "kind": SelectField(_l("Kind"), default="reply",
                            choices=[(k, _l(k)) for k in MESSAGE_KINDS])}
    description_columns = {"kind": "A reply is sent to the customer; a note stays internal; a "
                                   "call records a phone call; a customer message is the "
                                   "customer's own words"}
    base_order = ("created_on", "asc")


class TicketView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Ticket)
    translated_values = {"status": STATUSES, "priority": PRIORITIES, "channel": CHANNELS,
                         "sla_state": sla.STATES}
    list_columns = ["id", "subject", "contact", "status", "priority", "channel", "team",
                    "assignee", "sla_state", "resolution_due_at", "created_on"]
    search_columns = ["subject", "contact", "account", "status", "priority", "channel",
                      "category", "team", "assignee", "tags", "created_on",
                      "resolution_due_at"]
    add_columns = ["subject", "description", "contact", "account", "channel", "priority",
                   "category", "team", "assignee", "tags", "email"]
    edit_columns = add_columns + ["status"]
    show_columns = ["id", "subject", "description", "contact", "account", "channel",
                    "priority", "category", "status", "team", "assignee", "tags", "email",
                    "sla_state", "first_response_due_at", "first_response_at",
                    "resolution_due_at", "resolved_at", "closed_at", "sla_paused_hours",
                    "satisfaction", "created_on"]
    label_columns = {"sla_state": "SLA", "first_response_due_at": "First response due",
                     "resolution_due_at": "Resolution due",
                     "sla_paused_hours": "SLA paused (business hours)",
                     "satisfaction": "Customer satisfaction"}
    description_columns = {"status": "new → open → pending → resolved → closed; "
                                     "resolved and closed tickets may be reopened"}
    base_order = ("created_on", "desc")
    related_views = [TicketMessageView]


class ArticleVersionView(TrellisModelView):
    datamodel = TrellisSQLAInterface(ArticleVersion)
    base_permissions = ["can_read"]
    list_columns = ["version", "title", "saved_on", "saved_by"]
    show_columns = ["article", "version", "title", "body", "saved_on", "saved_by"]
    base_order = ("version", "desc")


class ArticleView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Article)
    list_columns = ["title", "category", "status", "views", "helpful_yes", "helpful_no",
                    "updated_on"]
    search_columns = ["title", "body", "category", "status", "updated_on"]
    add_columns = edit_columns = ["title", "body", "category", "status"]
    show_columns = ["title", "category", "status", "body", "author", "views", "created_on",
                    "updated_on"]
    description_columns = {"status": "draft or published (shown in the public help centre "
                                     "at /help/)"}
    base_order = ("updated_on", "desc")
    related_views = [ArticleVersionView]


class SurveyView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Survey)
    base_permissions = ["can_read"]
    list_columns = ["ticket", "agent", "team", "rating", "nps", "comment", "sent_at",
                    "answered_at"]
    search_columns = ["agent", "team", "rating", "answered_at"]
    show_columns = list_columns
    base_order = ("id", "desc")


class CannedResponseView(TrellisModelView):
    datamodel = TrellisSQLAInterface(CannedResponse)
    list_columns = ["name", "team"]
    add_columns = edit_columns = show_columns = ["name", "team", "body"]
    description_columns = {
        "team": "only for this team's tickets (empty: every team)",
        "body": "merge fields: {{ contact.first_name }}, {{ ticket.reference }}, "
                "{{ ticket.subject }}, {{ agent.name }}..."}


class CategoryView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Category)
    list_columns = add_columns = edit_columns = ["name", "team"]
    description_columns = {"team": "new tickets of this category go to this team"}


class SlaPolicyView(TrellisModelView):
    datamodel = TrellisSQLAInterface(SlaPolicy)
    list_columns = add_columns = edit_columns = ["priority", "tier", "first_response_hours",
                                                 "resolution_hours"]
    description_columns = {"tier": "customer tier (setting sla_tier_feature); empty: everyone",
                           "first_response_hours": "business hours of the default calendar",
                           "resolution_hours": "business hours, not counting time pending"}


class AgentStatusView(TrellisModelView):
    datamodel = TrellisSQLAInterface(AgentStatus)
    list_columns = add_columns = edit_columns = ["user", "away"]
    description_columns = {"away": "away agents get no tickets by automatic assignment"}


# ------------------------------------------------------------------ APIs


def _user_id() -> int | None:
    from flask import g

    user = getattr(g, "user", None)
    return user.id if getattr(user, "is_authenticated", False) else None



def _api(model: type, name: str, columns: list[str], **kwargs: Any) -> type[TrellisModelApi]:
    return model_api(model, name, columns, tag=f"Service: {model.__name__}s", **kwargs)


class SlaStateMixin:
    """``sla_state`` in every ticket result (one query per page)."""

    computed_fields = {
        "sla_state": {"type": "string", "nullable": True, "enum": [*sla.STATES, None],
                      "description": "met, on_track, at_risk, paused (pending) or breached"},
        "rating": {"type": "integer", "nullable": True,
                   "description": "the customer's satisfaction rating (1-5), once answered"}}

    def _sla_fill(self, rows: list[dict[str, Any]], ids: list[Any]) -> None:
        ids = [i for i in ids if i is not None]
        if ids:
            found = sla.states(db.session, ids)
            ratings = dict(db.session.execute(select(Survey.ticket_id, Survey.rating).where(
                Survey.ticket_id.in_(ids), Survey.rating.is_not(None))).all())
            for row, pk in zip(rows, ids):
                row["sla_state"] = found.get(pk)
                row["rating"] = ratings.get(pk)

    def pre_get(self, data: dict[str, Any]) -> None:
        super().pre_get(data)  # type: ignore[misc]
        if isinstance(data.get("result"), dict):
            self._sla_fill([data["result"]], [data.get("id")])

    def pre_get_list(self, data: dict[str, Any]) -> None:
        super().pre_get_list(data)  # type: ignore[misc]
        rows = data.get("result") or []
        self._sla_fill(rows, list(data.get("ids") or [r.get("id") for r in rows]))


TICKET_COLUMNS = ["subject", "description", "contact_id", "account_id", "channel", "priority",
                  "category_id", "status", "assignee_id", "team_id", "tags", "email"]


class TicketApi(SlaStateMixin, _api(
        Ticket, "ticket", TICKET_COLUMNS,
        read_only=["created_on", "first_response_at", "resolved_at", "closed_at",
                   "first_response_due_at", "resolution_due_at", "sla_paused_hours",
                   "sla_at_risk_at", "sla_breached_at", "sla_escalated_at"],
        optional_columns=["channel", "priority", "status"],
        validators_columns={"channel": validate.OneOf(CHANNELS),
                            "priority": validate.OneOf(PRIORITIES),
                            "status": validate.OneOf(STATUSES),
                            "subject": validate.Length(min=1, max=255),
                            "email": validate.Email()})):
    """``/api/v1/ticket/``; status changes follow the workflow (else 400 on ``status``)."""

    method_permission_name = {**API_PERMISSIONS, "suggestions": "read", "canned": "read",
                              "render_canned": "read", "attachments": "read",
                              "upload": "write", "download": "read"}

    @expose("/<int:pk>/attachments", methods=["GET"])
    @protect()
    @safe
    @permission_name("attachments")
    def attachments(self, pk: int) -> Any:
        """The ticket's attachments.
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: "result: [{id, filename, content_type, size, message_id, url}]"}
            404: {$ref: '#/components/responses/404'}
        """
        ticket = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        if ticket is None:
            return self.response_404()  # type: ignore[attr-defined]
        return self.response(200, result=attachments.listing(db.session, pk))  # type: ignore[attr-defined]

    @expose("/<int:pk>/attachments", methods=["POST"])
    @protect()
    @safe
    @permission_name("upload")
    def upload(self, pk: int) -> Any:
        """Attach a file (multipart field ``file``; allowed types, size limit).
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          requestBody:
            content:
              multipart/form-data:
                schema: {type: object, properties: {file: {type: string, format: binary}}}
          responses:
            201: {description: "the attachment: {id, filename, content_type, size, url}"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        ticket = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        if ticket is None:
            return self.response_404()  # type: ignore[attr-defined]
        upload = request.files.get("file")
        if upload is None:
            return self.response_400(message={"file": ["Send the file as the multipart "  # type: ignore[attr-defined]
                                                       "field 'file'."]})
        limit = (get_settings("service")["attachment_max_mb"] * 1024 * 1024) + 1
        data = upload.stream.read(limit)
        try:
            item = attachments.make(pk, upload.filename, data, user_id=_user_id())
        except attachments.AttachmentRefused as exc:
            return self.response_400(message={"file": [str(exc)]})  # type: ignore[attr-defined]
        db.session.add(item)
        db.session.commit()
        return self.response(201, id=item.id, filename=item.filename,  # type: ignore[attr-defined]
                             content_type=item.content_type, size=item.size,
                             url=f"/api/v1/ticket/{pk}/attachments/{item.id}")

    @expose("/<int:pk>/attachments/<int:attachment_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("download")
    def download(self, pk: int, attachment_id: int) -> Any:
        """Download an attachment (always as a download, never rendered).
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          - {in: path, name: attachment_id, schema: {type: integer}}
          responses:
            200: {description: the file}
            404: {$ref: '#/components/responses/404'}
        """
        ticket = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        item = db.session.get(Attachment, attachment_id) if ticket is not None else None
        if item is None or item.ticket_id != pk:
            return self.response_404()  # type: ignore[attr-defined]
        return Response(item.data, mimetype=item.content_type,
                        headers=attachments.download_headers(item))

    @expose("/<int:pk>/canned", methods=["GET"])
    @protect()
    @safe
    @permission_name("canned")
    def canned(self, pk: int) -> Any:
        """The canned responses usable on this ticket (every team's and its team's).
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: "result: [{id, name}]"}
            404: {$ref: '#/components/responses/404'}
        """
        ticket = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        if ticket is None:
            return self.response_404()  # type: ignore[attr-defined]
        return self.response(200, result=[  # type: ignore[attr-defined]
            {"id": c.id, "name": c.name} for c in canned.available(db.session, ticket)])

    @expose("/<int:pk>/canned/<int:canned_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("render_canned")
    def render_canned(self, pk: int, canned_id: int) -> Any:
        """A canned response rendered for this ticket (not saved: post it as a reply).
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          - {in: path, name: canned_id, schema: {type: integer}}
          responses:
            200: {description: "body: the text"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        ticket = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        if ticket is None:
            return self.response_404()  # type: ignore[attr-defined]
        found = {c.id: c for c in canned.available(db.session, ticket)}.get(canned_id)
        if found is None:
            return self.response_404()  # type: ignore[attr-defined]
        try:
            body = canned.render_for(db.session, found, ticket)
        except canned.RenderError as exc:
            return self.response_400(message={"body": [str(exc)]})  # type: ignore[attr-defined]
        return self.response(200, body=body)  # type: ignore[attr-defined]

    @expose("/<int:pk>/suggestions", methods=["GET"])
    @protect()
    @safe
    @permission_name("suggestions")
    def suggestions(self, pk: int) -> Any:
        """Published knowledge-base articles matching words of the ticket's subject.
        ---
        get:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: "result: [{id, title, category, status, url}], best first"}
            404: {$ref: '#/components/responses/404'}
        """
        ticket = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        if ticket is None:
            return self.response_404()  # type: ignore[attr-defined]
        return self.response(200, result=[kb.as_json(a) for a in  # type: ignore[attr-defined]
                                          kb.suggestions(db.session, ticket)])


TicketMessageApi = _api(TicketMessage, "ticket_message", ["ticket_id", "kind", "body"],
                        read_only=["author_id", "from_email", "message_id", "in_reply_to",
                                   "sent_at", "created_on"],
                        optional_columns=["kind"],
                        validators_columns={"kind": validate.OneOf(MESSAGE_KINDS),
                                            "body": validate.Length(min=1, max=100_000)})
CategoryApi = _api(Category, "service_category", ["name", "team_id"])
SlaPolicyApi = _api(SlaPolicy, "sla_policy", ["priority", "tier", "first_response_hours",
                                              "resolution_hours"],
                    validators_columns={"priority": validate.OneOf(PRIORITIES),
                                        "first_response_hours": validate.Range(min=0.01,
                                                                               max=10_000),
                                        "resolution_hours": validate.Range(min=0.01,
                                                                           max=10_000)})
AgentStatusApi = _api(AgentStatus, "agent_status", ["user_id", "away"])


class ArticleApi(_api(Article, "kb_article", ["title", "body", "category", "status"],
                      read_only=["author_id", "views", "helpful_yes", "helpful_no",
                                 "created_on", "updated_on"],
                      optional_columns=["status"],
                      validators_columns={"status": validate.OneOf(ARTICLE_STATUSES),
                                          "title": validate.Length(min=1, max=255),
                                          "body": validate.Length(min=1, max=200_000)})):
    """``/api/v1/kb_article/``, and ``/search?q=`` over title and body."""

    method_permission_name = {**API_PERMISSIONS, "search": "read"}

    @expose("/search", methods=["GET"])
    @protect()
    @safe
    @permission_name("search")
    def search(self) -> Any:
        """Full-text search of articles (all words, stemmed), best first.
        ---
        get:
          parameters:
          - {in: query, name: q, required: true, schema: {type: string, maxLength: 200}}
          - {in: query, name: published, schema: {type: boolean}}
          responses:
            200: {description: "result: [{id, title, category, status, url}]"}
            400: {$ref: '#/components/responses/400'}
        """
        query = request.args.get("q") or ""
        if not query.strip() or len(query) > 200:
            return self.response_400(  # type: ignore[attr-defined]
                message={"q": ["Give 1 to 200 characters to search for."]})
        published = request.args.get("published", "false").lower() in ("1", "true", "yes")
        found = kb.search(db.session, query, published_only=published)
        return self.response(200, result=[kb.as_json(a) for a in found])  # type: ignore[attr-defined]


SurveyApi = _api(Survey, "ticket_survey", ["ticket_id", "contact_id", "agent_id", "team_id",
                                           "rating", "nps", "comment", "sent_at",
                                           "answered_at"],
                 include_route_methods={"get_list", "get", "info"},
                 class_permission_name="service.Survey")


class ServiceReportApi(BaseApi):
    """``/api/v1/service_report/csat?by=agent|team`` (record rules apply)."""

    resource_name = "service_report"
    class_permission_name = "service.Report"
    method_permission_name = {"csat": "read", "report": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Service: reports"

    @expose("/csat", methods=["GET"])
    @protect()
    @safe
    @permission_name("csat")
    def csat(self) -> Any:
        """Satisfaction by agent or team: responses, average rating, CSAT % (4-5).
        ---
        get:
          parameters:
          - {in: query, name: by, schema: {type: string, enum: [agent, team]}}
          responses:
            200: {description: "result: [{id, label, responses, average, csat_pct}]"}
            400: {$ref: '#/components/responses/400'}
        """
        by = request.args.get("by", "agent")
        if by not in ("agent", "team"):
            return self.response_400(message={"by": ["Must be agent or team."]})
        return self.response(200, result=survey.csat(db.session, by))

    @expose("/<name>", methods=["GET"])
    @protect()
    @safe
    @permission_name("report")
    def report(self, name: str) -> Any:
        """``response_times``, ``sla_compliance``, ``backlog`` or ``volume``.

        ``since`` / ``until`` (ISO dates or timestamps) bound the tickets'
        creation time (not for ``backlog``).
        ---
        get:
          parameters:
          - {in: path, name: name, schema: {type: string, enum: [response_times, sla_compliance, backlog, volume]}}
          - {in: query, name: since, schema: {type: string}}
          - {in: query, name: until, schema: {type: string}}
          responses:
            200: {description: "the report's figures"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        func = reports.REPORTS.get(name)
        if func is None:
            return self.response_404()
        bounds: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for key in ("since", "until"):
            raw = request.args.get(key)
            try:
                bounds[key] = sla.utc(datetime.fromisoformat(raw)) if raw else None
            except ValueError:
                errors[key] = ["Use an ISO date, e.g. 2026-11-01."]
        if errors:
            return self.response_400(message=errors)
        if name == "backlog":
            return self.response(200, **func(db.session))
        return self.response(200, **func(db.session, **bounds))


CannedResponseApi = _api(CannedResponse, "canned_response", ["name", "body", "team_id"],
                         validators_columns={"name": validate.Length(min=1, max=100),
                                             "body": validate.Length(min=1, max=20_000)})


ArticleVersionApi = _api(ArticleVersion, "kb_article_version",
                         ["article_id", "version", "title", "body", "saved_by", "saved_on"],
                         include_route_methods={"get_list", "get", "info"},
                         class_permission_name="service.ArticleVersion")
