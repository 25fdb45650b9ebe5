"""Admin views and REST APIs of the integrations plugin (model views and APIs;
the pages with their own templates are in :mod:`.pages`)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_appbuilder.actions import action
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext as _
from markupsafe import Markup, escape
from marshmallow import ValidationError, fields, validate
from sqlalchemy import select

from trellis import merge as core_merge
from trellis import rules
from trellis.api import API_PERMISSIONS, model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.validation import RecordInvalid
from trellis.views import VIEW_PERMISSIONS, TrellisModelView

from trellis_integrations import webhooks
from trellis_integrations.models import (
    ImportRun,
    InboundSource,
    TrackingSite,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

# ------------------------------------------------------------------ webhooks


class WebhookAttemptView(TrellisModelView):
    datamodel = TrellisSQLAInterface(WebhookAttempt)
    base_permissions = ["can_read"]
    list_columns = ["attempted_at", "status_code", "error", "duration_ms", "response"]
    base_order = ("attempted_at", "desc")
    exportable = False


class WebhookDeliveryView(TrellisModelView):
    datamodel = TrellisSQLAInterface(WebhookDelivery)
    class_permission_name = "WebhookDelivery"
    method_permission_name = {**VIEW_PERMISSIONS, "redeliver": "write"}
    base_permissions = ["can_read", "can_write"]
    list_columns = ["created_on", "endpoint", "event_name", "status", "attempts",
                    "last_status_code", "next_attempt_at", "delivered_at"]
    show_columns = ["endpoint", "event_name", "event_id", "status", "attempts",
                    "last_status_code", "last_error", "next_attempt_at", "delivered_at",
                    "created_on", "payload"]
    search_columns = ["endpoint", "event_name", "status", "last_status_code"]
    base_order = ("created_on", "desc")
    related_views = [WebhookAttemptView]

    @action("redeliver", "Send again", "Send the selected deliveries again?", "fa-redo",
            multiple=True)
    def redeliver(self, items: Any) -> Any:
        items = items if isinstance(items, list) else [items]
        sent = 0
        for item in items:
            if item is not None and item.status in ("delivered", "dead"):
                webhooks.redeliver(item)
                sent += 1
        db.session.commit()
        flash(_("%(count)s delivery(ies) queued again.", count=sent), "info")
        return redirect(url_for(".list"))


class WebhookEndpointView(TrellisModelView):
    datamodel = TrellisSQLAInterface(WebhookEndpoint)
    class_permission_name = "WebhookEndpoint"
    method_permission_name = {**VIEW_PERMISSIONS, "rotate": "write", "test": "write"}
    base_permissions = ["can_read", "can_write"]
    list_columns = ["name", "kind", "url", "events", "active"]
    add_columns = edit_columns = ["name", "kind", "url", "events", "template", "active"]
    show_columns = ["name", "kind", "url", "events", "template", "active", "secret",
                    "previous_secret_expires_at", "created_on"]
    description_columns = {
        "events": "Event names or patterns, comma-separated: contact.created, deal.*, * (all).",
        "kind": "webhook (signed JSON), slack, dingtalk, wecom (chat bots), custom (body from "
                "the template), or a connector's name.",
        "template": "Chat kinds: the message (Jinja, e.g. {{ event.type }} #{{ event.record_id "
                    "}}); custom: the whole request body.",
    }
    exportable = False

    @action("rotate", "Rotate secret", "Make a new signing secret? The old one stays valid "
            "for the grace period.", "fa-key", multiple=False)
    def rotate(self, item: Any) -> Any:
        if item is not None:
            webhooks.rotate_secret(item)
            db.session.commit()
            flash("New secret made; the previous one is accepted until "
                  f"{item.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC.", "info")
        return redirect(url_for(".show", pk=item.id) if item is not None else url_for(".list"))

    @action("test", "Send a test event", "", "fa-paper-plane", multiple=False)
    def test(self, item: Any) -> Any:
        if item is not None:
            result = webhooks.send_test(item)
            flash(("Test delivered: HTTP %s." % result["status"]) if result["ok"] else
                  f"Test failed: {result['message'] or result['status']}",
                  "info" if result["ok"] else "danger")
        return redirect(url_for(".show", pk=item.id) if item is not None else url_for(".list"))


ENDPOINT_COLUMNS = ["name", "kind", "url", "events", "template", "active"]


class WebhookEndpointApi(model_api(WebhookEndpoint, "webhook", ENDPOINT_COLUMNS,
                                   read_only=["secret", "previous_secret_expires_at",
                                              "created_on"],
                                   search=["name", "kind", "active"],
                                   optional_columns=["events", "kind", "active"],
                                   tag="Webhooks")):
    class_permission_name = "WebhookEndpoint"
    method_permission_name = {**API_PERMISSIONS, "rotate": "write", "test": "write"}

    @expose("/<int:pk>/rotate_secret", methods=["POST"])
    @protect()
    @safe
    @permission_name("rotate")
    def rotate(self, pk: int) -> Any:
        """Make a new signing secret (the old one stays valid for the grace period).
        ---
        post:
          responses:
            200:
              description: '{"secret": "...", "previous_secret_expires_at": "..."}'
            404:
              $ref: '#/components/responses/404'
        """
        endpoint = db.session.get(WebhookEndpoint, pk)
        if endpoint is None:
            return self.response_404()
        secret = webhooks.rotate_secret(endpoint)
        db.session.commit()
        return self.response(200, secret=secret, previous_secret_expires_at=(
            endpoint.previous_secret_expires_at.isoformat()))

    @expose("/<int:pk>/test", methods=["POST"])
    @protect()
    @safe
    @permission_name("test")
    def test(self, pk: int) -> Any:
        """Send a test event to the endpoint now.
        ---
        post:
          responses:
            200:
              description: '{"ok": bool, "status": code, "message": "..."}'
            404:
              $ref: '#/components/responses/404'
        """
        endpoint = db.session.get(WebhookEndpoint, pk)
        if endpoint is None:
            return self.response_404()
        return self.response(200, **webhooks.send_test(endpoint))


DELIVERY_COLUMNS = ["endpoint_id", "event_id", "event_name", "status", "attempts",
                    "last_status_code", "last_error", "next_attempt_at", "created_on",
                    "delivered_at"]


class WebhookDeliveryApi(model_api(WebhookDelivery, "webhook_delivery", [],
                                   read_only=DELIVERY_COLUMNS,
                                   search=["endpoint_id", "event_name", "status"],
                                   tag="Webhooks")):
    class_permission_name = "WebhookDelivery"
    include_route_methods = {"get", "get_list", "info", "redeliver", "attempts"}
    method_permission_name = {**API_PERMISSIONS, "redeliver": "write", "attempts": "read"}

    @expose("/<int:pk>/redeliver", methods=["POST"])
    @protect()
    @safe
    @permission_name("redeliver")
    def redeliver(self, pk: int) -> Any:
        """Send a delivered or dead-lettered delivery again.
        ---
        post:
          responses:
            200:
              description: '{"status": "pending"}'
            400:
              $ref: '#/components/responses/400'
            404:
              $ref: '#/components/responses/404'
        """
        delivery = db.session.get(WebhookDelivery, pk)
        if delivery is None:
            return self.response_404()
        try:
            webhooks.redeliver(delivery)
        except ValueError as exc:
            db.session.rollback()
            return self.response_400(message={"status": [str(exc)]})
        db.session.commit()
        return self.response(200, status=delivery.status)

    @expose("/<int:pk>/attempts", methods=["GET"])
    @protect()
    @safe
    @permission_name("attempts")
    def attempts(self, pk: int) -> Any:
        """The delivery log of one delivery: every attempt and its answer.
        ---
        get:
          responses:
            200:
              description: '{"result": [{"attempted_at", "status_code", "error", ...}]}'
        """
        rows = db.session.scalars(select(WebhookAttempt).where(
            WebhookAttempt.delivery_id == pk).order_by(WebhookAttempt.id)).all()
        return self.response(200, result=[{
            "attempted_at": a.attempted_at.isoformat(), "status_code": a.status_code,
            "error": a.error, "duration_ms": a.duration_ms, "response": a.response}
            for a in rows])


# ------------------------------------------------------------------ tracking & inbound


class TrackingSiteView(TrellisModelView):
    datamodel = TrellisSQLAInterface(TrackingSite)
    class_permission_name = "TrackingSite"
    list_columns = ["name", "site_key", "allowed_origins", "active"]
    add_columns = edit_columns = ["name", "allowed_origins", "active"]
    show_columns = ["name", "site_key", "allowed_origins", "active", "snippet"]
    label_columns = {"snippet": "Put this on every page"}
    description_columns = {"allowed_origins": "Origins allowed to send events, comma-separated "
                                              "or one per line: https://shop.example.com"}
    exportable = False

    def pre_add(self, item: Any) -> None:
        from trellis_integrations.tracking import new_site_key

        item.site_key = item.site_key or new_site_key()
        super().pre_add(item)


class InboundSourceView(TrellisModelView):
    datamodel = TrellisSQLAInterface(InboundSource)
    class_permission_name = "InboundSource"
    list_columns = ["name", "slug", "target", "active", "received_count", "last_received_at"]
    add_columns = edit_columns = ["name", "slug", "target", "mapping", "active"]
    show_columns = ["name", "slug", "target", "mapping", "active", "secret", "received_count",
                    "last_received_at"]
    description_columns = {"mapping": 'JSON: {"email": "customer.email", "first_name": '
                                      '"customer.first"}',
                           "target": "contact, lead or event"}
    exportable = False

    def pre_add(self, item: Any) -> None:
        from trellis_integrations.inbound import new_secret

        item.secret = item.secret or new_secret()
        super().pre_add(item)


def site_before_save(session: Any, site: TrackingSite, action: str) -> None:
    from trellis_integrations.tracking import new_site_key

    if not site.site_key:
        site.site_key = new_site_key()


def site_validate(site: TrackingSite) -> dict[str, list[str]]:
    errors = {}
    for origin in (site.allowed_origins or "").replace("\n", ",").split(","):
        origin = origin.strip()
        if origin and not origin.startswith(("http://", "https://")):
            errors.setdefault("allowed_origins", []).append(
                f"{origin!r}: an origin looks like https://shop.example.com")
    return errors


def inbound_before_save(session: Any, source: InboundSource, action: str) -> None:
    from trellis_integrations.inbound import new_secret

    if not source.secret:
        source.secret = new_secret()
    if isinstance(source.mapping, str):
        import json

        try:
            source.mapping = json.loads(source.mapping or "{}")
        except ValueError:
            pass


def inbound_validate(source: InboundSource) -> dict[str, list[str]]:
    from trellis_integrations.models import INBOUND_TARGETS

    errors: dict[str, list[str]] = {}
    if source.target not in INBOUND_TARGETS:
        errors["target"] = [f"Choose one of {', '.join(INBOUND_TARGETS)}."]
    if not isinstance(source.mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in source.mapping.items()):
        errors["mapping"] = ['A JSON object of field -> path, e.g. {"email": "data.email"}.']
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", source.slug or ""):
        errors["slug"] = ["Use lower-case letters, digits, - and _."]
    return errors


SiteApi = model_api(TrackingSite, "tracking_site", ["name", "allowed_origins", "active"],
                    read_only=["site_key"], optional_columns=["active"], tag="Tracking",
                    class_permission_name="TrackingSite")
InboundApi = model_api(InboundSource, "inbound_source",
                       ["name", "slug", "target", "mapping", "active"],
                       read_only=["secret", "received_count", "last_received_at"],
                       optional_columns=["active", "target"], tag="Inbound webhooks",
                       class_permission_name="InboundSource")


# ------------------------------------------------------------------ merge API


def merge_input(body: Any) -> dict[str, Any]:
    from marshmallow import Schema

    class MergeInput(Schema):
        model = fields.String(required=True, validate=validate.OneOf(["contact", "account"]))
        winner_id = fields.Integer(required=True)
        loser_ids = fields.List(fields.Integer(), required=True,
                                validate=validate.Length(min=1, max=20))
        values = fields.Dict(keys=fields.String(), load_default=dict)
        dry_run = fields.Boolean(load_default=False)

    return MergeInput().load(body if isinstance(body, dict) else {})


def may_merge(model: str, ids: list[int]) -> dict[str, list[str]]:
    """Field errors when the user may not change every record of the merge."""
    from flask import current_app

    sm = current_app.appbuilder.sm
    entry = current_app.extensions["trellis"].registry.get(model)
    resource = f"{entry.plugin}.{entry.model.__name__}"
    if not sm.has_access("can_write", resource):
        return {"model": [f"You may not change {entry.label.lower()}s."]}
    key = entry.model.__mapper__.primary_key[0]
    visible = set(db.session.scalars(rules.restrict(select(key).where(key.in_(ids)),
                                                    entry.model)))
    hidden = [i for i in ids if i not in visible]
    if hidden:
        return {"loser_ids": [f"No {entry.label.lower()} with id {i}." for i in hidden]}
    return {}


def do_merge(body: Any) -> tuple[int, dict[str, Any]]:
    """Validate and run (or dry-run) a merge for the current user: ``(status, body)``."""
    try:
        data = merge_input(body)
    except ValidationError as exc:
        return 400, {"message": exc.messages}
    problems = may_merge(data["model"], [data["winner_id"], *data["loser_ids"]])
    if problems:
        return 400, {"message": problems}
    entry_schema = _schema_for(data["model"])
    try:
        values = entry_schema.load(data["values"], partial=True) if data["values"] else {}
    except ValidationError as exc:
        return 400, {"message": {"values": exc.messages}}
    try:
        result = core_merge.merge(db.session, data["model"], data["winner_id"],
                                  data["loser_ids"], values, dry_run=data["dry_run"])
    except core_merge.MergeError as exc:
        db.session.rollback()
        return 400, {"message": exc.messages}
    except RecordInvalid as exc:
        db.session.rollback()
        return 400, {"message": {"values": exc.messages}}
    if data["dry_run"]:
        db.session.rollback()
    else:
        db.session.commit()
    return 200, {"dry_run": data["dry_run"], **result}


def _schema_for(model: str) -> Any:
    from flask import current_app

    return current_app.extensions["trellis"].registry.get(model).schema()


def do_undo(merge_id: int) -> tuple[int, dict[str, Any]]:
    from trellis.models import MergeRecord

    record = db.session.get(MergeRecord, merge_id)
    if record is None:
        return 404, {"message": "Not found"}
    problems = may_merge(record.model, [record.winner_id])
    if problems:
        return 400, {"message": problems}
    try:
        result = core_merge.undo(db.session, merge_id)
    except core_merge.MergeError as exc:
        db.session.rollback()
        return 400, {"message": exc.messages}
    db.session.commit()
    return 200, result


class MergeApi(BaseApi):
    """``/api/v1/merge/``: merge duplicates (with a dry run) and undo merges."""

    resource_name = "merge"
    class_permission_name = "Duplicate"
    method_permission_name = {"merge": "write", "undo": "write", "candidates": "read",
                              "dismiss": "write"}
    base_permissions = ["can_read", "can_write"]
    allow_browser_login = True
    openapi_spec_tag = "Duplicates"

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("merge")
    def merge(self) -> Any:
        """Merge records into a winner, or preview it with ``dry_run``.
        ---
        post:
          description: >-
            {"model": "contact", "winner_id": 1, "loser_ids": [2], "values":
            {"phone": "+4930..."}, "dry_run": true}.  Every foreign key to the
            losers in every plugin is re-pointed to the winner; the answer lists the
            rows per table and column, the changes to the winner and conflicting rows.
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            200:
              description: '{"merge_id", "fields", "references", "conflicts", "dry_run"}'
            400:
              $ref: '#/components/responses/400'
        """
        status, body = do_merge(request.get_json(silent=True))
        return self.response(status, **body)

    @expose("/<int:merge_id>/undo", methods=["POST"])
    @protect()
    @safe
    @permission_name("undo")
    def undo(self, merge_id: int) -> Any:
        """Undo a merge: the losers come back and every re-pointed row with them.
        ---
        post:
          responses:
            200:
              description: '{"merge_id", "winner_id", "loser_ids", "restored"}'
            400:
              $ref: '#/components/responses/400'
            404:
              $ref: '#/components/responses/404'
        """
        status, body = do_undo(merge_id)
        return self.response(status, **body)

    @expose("/candidates", methods=["GET"])
    @protect()
    @safe
    @permission_name("candidates")
    def candidates(self) -> Any:
        """Open duplicate candidates with their reasons and score (best first).
        ---
        get:
          parameters:
          - {in: query, name: model, schema: {type: string, enum: [contact, account]}}
          responses:
            200:
              description: '{"result": [{"id", "model", "a", "b", "score", "reasons"}]}'
        """
        from trellis_integrations.pages import candidate_rows

        model = request.args.get("model", "contact")
        if model not in ("contact", "account"):
            return self.response_400(message={"model": ["Use contact or account."]})
        return self.response(200, result=candidate_rows(model, limit=200))

    @expose("/candidates/<int:pk>/dismiss", methods=["POST"])
    @protect()
    @safe
    @permission_name("dismiss")
    def dismiss(self, pk: int) -> Any:
        """Not a duplicate: the pair is not proposed again.
        ---
        post:
          responses:
            200:
              description: '{"status": "dismissed"}'
        """
        from trellis_integrations.models import DuplicateCandidate

        candidate = db.session.get(DuplicateCandidate, pk)
        if candidate is None:
            return self.response_404()
        candidate.status = "dismissed"
        db.session.commit()
        return self.response(200, status="dismissed")


def run_link(run: ImportRun) -> Any:
    return Markup('<a href="{}">{}</a>').format(
        url_for("ImportsView.show", import_id=run.id), escape(f"#{run.id}"))
