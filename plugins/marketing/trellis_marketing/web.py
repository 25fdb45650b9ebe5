"""REST APIs and admin views of the marketing plugin."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import fields, validate

from trellis import conditions
from trellis.api import model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.views import TrellisModelView
from trellis_marketing import segments
from trellis_marketing.models import SEGMENT_KINDS, Segment

# ------------------------------------------------------------------ segments

SEGMENT_COLUMNS = ["name", "description", "kind", "rules"]


class _SegmentApiBase:
    def post_add(self, item: Segment) -> None:
        """A static segment takes its snapshot when it is created."""
        if item.kind == "static":
            segments.snapshot(db.session, item)
            db.session.commit()


SegmentApi = model_api(
    Segment, "segment", SEGMENT_COLUMNS, read_only=["owner_id", "member_count", "evaluated_at",
                                                    "created_on"],
    search=["name", "kind"], tag="Marketing: Segments", optional_columns=["kind"],
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
    list_columns = ["name", "kind", "member_count", "evaluated_at"]
    show_columns = ["name", "description", "kind", "rules", "member_count", "evaluated_at",
                    "owner", "created_on"]
    add_columns = edit_columns = ["name", "description", "kind"]
    base_permissions = ["can_read"]
