"""The report builder's page (``/reports/``) and API (``/api/v1/report/``).

Both need ``core.ReportBuilder``: ``can_read`` to run reports and use shared
ones, ``can_write`` to save reports of one's own.  What a report may touch is
decided by :mod:`trellis.reportbuilder` (models the user may read, their
registry fields, the user's record rules).
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, request
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import or_, select

from trellis import export, reportbuilder
from trellis.db import db
from trellis.models import SavedReport

RESOURCE = "core.ReportBuilder"


class SavedReportSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    shared = fields.Boolean(load_default=False)
    definition = fields.Dict(required=True)


def _user_id() -> int:
    return g.user.id


def _visible(report_id: int) -> SavedReport | None:
    """A saved report the user may run: their own or a shared one."""
    report = db.session.get(SavedReport, report_id)
    if report is None or (report.owner_id != _user_id() and not report.shared):
        return None
    return report


def _as_dict(report: SavedReport) -> dict[str, Any]:
    return {"id": report.id, "name": report.name, "shared": report.shared,
            "owner_id": report.owner_id, "mine": report.owner_id == _user_id(),
            "definition": report.definition, "widget": f"core.report_{report.id}",
            "updated_on": report.updated_on.isoformat() if report.updated_on else None}


def saved_reports() -> list[SavedReport]:
    return list(db.session.scalars(select(SavedReport).where(
        or_(SavedReport.owner_id == _user_id(), SavedReport.shared.is_(True)))
        .order_by(SavedReport.name, SavedReport.id)))


def _run(definition: Any) -> dict[str, Any]:
    report = reportbuilder.validate(definition)
    result = reportbuilder.run(report)
    kind, chart = reportbuilder.widget_data(result, report.definition["chart"])
    return {**result, "definition": report.source, "chart": {"kind": kind, "data": chart}}


def _export(definition: Any, fmt: str, name: str) -> Any:
    report = reportbuilder.validate(definition)
    result = reportbuilder.run(report)
    header = [c["label"] for c in result["columns"]]
    return export.download(fmt, name, header, reportbuilder.display_rows(result),
                           audited_as="report", filters={"report": name})


def _format() -> str:
    fmt = request.args.get("format", "csv")
    if fmt not in export.FORMATS:
        raise ValidationError({"format": ["Use csv or xlsx."]})
    return fmt


class ReportBuilderView(BaseView):
    """``/reports/``: saved reports and the builder."""

    route_base = "/reports"
    default_view = "index"
    class_permission_name = RESOURCE
    method_permission_name = {"index": "read", "builder": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        return self.render_template("trellis/reports.html", reports=saved_reports())

    @expose("/builder")
    @expose("/builder/<int:report_id>")
    @has_access
    def builder(self, report_id: int | None = None) -> Any:
        report = None
        if report_id is not None:
            report = _visible(report_id)
            if report is None:
                abort(404)
        can_write = self.appbuilder.sm.has_access("can_write", RESOURCE)
        return self.render_template("trellis/report_builder.html",
                                    report=_as_dict(report) if report else None,
                                    can_write=can_write)


class ReportApi(BaseApi):
    """``/api/v1/report/``: run, save, share and export reports."""

    resource_name = "report"
    class_permission_name = RESOURCE
    method_permission_name = {"models": "read", "run": "read", "export": "read",
                              "list_saved": "read", "get_saved": "read",
                              "export_saved": "read", "create": "write", "update": "write",
                              "remove": "write"}
    allow_browser_login = True
    openapi_spec_tag = "Reports"

    def _error(self, exc: ValidationError) -> Any:
        return self.response_400(message=exc.messages)

    @expose("/models", methods=["GET"])
    @protect()
    @safe
    @permission_name("models")
    def models(self) -> Any:
        """Models the user may report on, with their fields, operators and measures.
        ---
        get:
          responses:
            200: {description: "result: [{name, label, plugin, fields: [...]}]"}
        """
        return self.response(200, result=reportbuilder.catalogue())

    @expose("/run", methods=["POST"])
    @protect()
    @safe
    @permission_name("run")
    def run(self) -> Any:
        """Run a report definition under the user's record rules.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            200: {description: "result: {columns, rows, truncated, chart: {kind, data}}"}
            400: {$ref: '#/components/responses/400'}
        """
        try:
            return self.response(200, result=_run(request.get_json(silent=True)))
        except ValidationError as exc:
            return self._error(exc)

    @expose("/export", methods=["POST"])
    @protect()
    @safe
    @permission_name("export")
    def export(self) -> Any:
        """Run a definition and download it (``?format=csv`` or ``xlsx``).
        ---
        post:
          parameters:
          - {in: query, name: format, schema: {type: string, enum: [csv, xlsx]}}
          responses:
            200: {description: "the file"}
            400: {$ref: '#/components/responses/400'}
        """
        try:
            return _export(request.get_json(silent=True), _format(), "report")
        except ValidationError as exc:
            return self._error(exc)

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("list_saved")
    def list_saved(self) -> Any:
        """The user's saved reports and those shared with everyone.
        ---
        get:
          responses:
            200: {description: "result: [{id, name, shared, mine, definition, widget}]"}
        """
        return self.response(200, result=[_as_dict(r) for r in saved_reports()])

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("create")
    def create(self) -> Any:
        """Save a report: ``{"name", "shared", "definition"}``.
        ---
        post:
          responses:
            201: {description: "the saved report"}
            400: {$ref: '#/components/responses/400'}
        """
        try:
            data = SavedReportSchema().load(request.get_json(silent=True) or {})
            report = reportbuilder.validate(data["definition"])
        except ValidationError as exc:
            return self._error(exc)
        saved = SavedReport(name=data["name"], shared=data["shared"], owner_id=_user_id(),
                            definition=report.source)
        db.session.add(saved)
        db.session.commit()
        return self.response(201, result=_as_dict(saved))

    @expose("/<int:report_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get_saved")
    def get_saved(self, report_id: int) -> Any:
        """A saved report and its result for the user.
        ---
        get:
          parameters:
          - {in: path, name: report_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "result: {id, name, ..., result: {columns, rows, chart}}"}
            404: {$ref: '#/components/responses/404'}
        """
        report = _visible(report_id)
        if report is None:
            return self.response_404()
        try:
            return self.response(200, result={**_as_dict(report),
                                              "result": _run(dict(report.definition))})
        except ValidationError as exc:
            return self._error(exc)

    @expose("/<int:report_id>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("update")
    def update(self, report_id: int) -> Any:
        """Change one of the user's own reports.
        ---
        put:
          parameters:
          - {in: path, name: report_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "the saved report"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        report = db.session.get(SavedReport, report_id)
        if report is None or report.owner_id != _user_id():
            return self.response_404()
        try:
            data = SavedReportSchema().load(request.get_json(silent=True) or {})
            definition = reportbuilder.validate(data["definition"]).source
        except ValidationError as exc:
            return self._error(exc)
        report.name, report.shared, report.definition = data["name"], data["shared"], definition
        db.session.commit()
        return self.response(200, result=_as_dict(report))

    @expose("/<int:report_id>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("remove")
    def remove(self, report_id: int) -> Any:
        """Delete one of the user's own reports.
        ---
        delete:
          parameters:
          - {in: path, name: report_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "deleted"}
            404: {$ref: '#/components/responses/404'}
        """
        report = db.session.get(SavedReport, report_id)
        if report is None or report.owner_id != _user_id():
            return self.response_404()
        db.session.delete(report)
        db.session.commit()
        return self.response(200, message="Deleted")

    @expose("/<int:report_id>/export", methods=["GET"])
    @protect()
    @safe
    @permission_name("export_saved")
    def export_saved(self, report_id: int) -> Any:
        """Download a saved report's result (``?format=csv`` or ``xlsx``).
        ---
        get:
          parameters:
          - {in: path, name: report_id, required: true, schema: {type: integer}}
          - {in: query, name: format, schema: {type: string, enum: [csv, xlsx]}}
          responses:
            200: {description: "the file"}
            404: {$ref: '#/components/responses/404'}
        """
        report = _visible(report_id)
        if report is None:
            return self.response_404()
        try:
            return _export(dict(report.definition), _format(), report.name)
        except ValidationError as exc:
            return self._error(exc)
