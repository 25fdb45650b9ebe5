"""``/api/v1/import/``: preview, start, follow, report and revert imports; and
``/api/v1/web_analytics/``."""

from __future__ import annotations

import json
from typing import Any

from flask import g, request, send_file
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import ValidationError

from trellis.db import db
from trellis.export import FORMATS, write

from trellis_integrations import analytics, importer
from trellis_integrations.models import ImportRun
from trellis_integrations.pages import run_status, start


def _form_bool(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


class ImportApi(BaseApi):
    resource_name = "import"
    class_permission_name = "Import"
    method_permission_name = {"preview": "write", "create": "write", "status": "read",
                              "errors": "read", "revert": "write"}
    base_permissions = ["can_read", "can_write"]
    allow_browser_login = True
    openapi_spec_tag = "Import"

    def _file(self) -> tuple[bytes, str] | None:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return None
        return upload.read(), upload.filename

    @expose("/preview", methods=["POST"])
    @protect()
    @safe
    @permission_name("preview")
    def preview(self) -> Any:
        """The header, first rows and a suggested mapping of a file (multipart:
        ``file``, ``model``, optional ``source``).
        ---
        post:
          responses:
            200:
              description: '{"header", "rows", "suggested", "fields", "match_keys", "total"}'
            400:
              $ref: '#/components/responses/400'
        """
        got = self._file()
        if got is None:
            return self.response_400(message={"file": ["Send a CSV or XLSX file."]})
        data, filename = got
        try:
            entry = importer.registry_entry(request.form.get("model", ""))
        except KeyError:
            return self.response_400(message={"model": ["No such model."]})
        fmt = importer.detect_format(filename, data)
        try:
            header, rows = importer.read(data, fmt)
        except importer.ImportFailed as exc:
            return self.response_400(message={"file": [str(exc)]})
        first = [cells for _, (_, cells) in zip(range(10), rows)]
        return self.response(200, header=header, rows=first, total=importer.count_rows(
            data, fmt), fields=importer.fields_of(entry), match_keys=importer.match_keys(entry),
            suggested=importer.suggest_mapping(header, entry, request.form.get("source")))

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("create")
    def create(self) -> Any:
        """Start an import (multipart: ``file``, ``model``, ``mapping`` as JSON
        ``{"column": "field"}``, ``match_on``, ``on_match``, ``mode``, ``dry_run``,
        ``source``); it runs as a background job.
        ---
        post:
          responses:
            202:
              description: the import's status (follow it at GET /api/v1/import/<id>)
            400:
              $ref: '#/components/responses/400'
        """
        got = self._file()
        if got is None:
            return self.response_400(message={"file": ["Send a CSV or XLSX file."]})
        data, filename = got
        try:
            mapping = json.loads(request.form.get("mapping") or "{}")
            if not isinstance(mapping, dict):
                raise ValueError
        except ValueError:
            return self.response_400(message={"mapping": ['A JSON object {"column": "field"}.']})
        user = getattr(g, "user", None)
        try:
            run = importer.create_run(
                model=request.form.get("model", ""), data=data, filename=filename,
                mapping=mapping, match_on=request.form.get("match_on", "email"),
                on_match=request.form.get("on_match", "update"),
                mode=request.form.get("mode", "skip_bad"),
                dry_run=_form_bool(request.form.get("dry_run")),
                source=request.form.get("source"), user_id=getattr(user, "id", None))
        except ValidationError as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        db.session.flush()
        start(run)
        run = db.session.get(ImportRun, run.id)
        return self.response(202, **run_status(run))

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("status")
    def status(self, pk: int) -> Any:
        """An import's status and progress.
        ---
        get:
          responses:
            200:
              description: '{"status", "total", "processed", "percent", "created", ...}'
            404:
              $ref: '#/components/responses/404'
        """
        run = db.session.get(ImportRun, pk)
        if run is None:
            return self.response_404()
        return self.response(200, **run_status(run))

    @expose("/<int:pk>/errors", methods=["GET"])
    @protect()
    @safe
    @permission_name("errors")
    def errors(self, pk: int) -> Any:
        """The per-row error report (``?format=csv|xlsx|json``, default json).
        ---
        get:
          responses:
            200:
              description: 'rows: [{"row", "field", "message", "raw"}] or a file'
        """
        if db.session.get(ImportRun, pk) is None:
            return self.response_404()
        header, rows = importer.error_report(pk)
        fmt = request.args.get("format", "json")
        if fmt in FORMATS:
            out, _ = write(rows, header, fmt)
            return send_file(out, mimetype=FORMATS[fmt], as_attachment=True,
                             download_name=f"import-{pk}-errors.{fmt}")
        return self.response(200, result=[
            {"row": r[0], "field": r[1], "message": r[2], "raw": dict(zip(header[3:], r[3:]))}
            for r in rows])

    @expose("/<int:pk>/revert", methods=["POST"])
    @protect()
    @safe
    @permission_name("revert")
    def revert(self, pk: int) -> Any:
        """Revert a finished import: delete what it created, restore what it updated.
        ---
        post:
          responses:
            200:
              description: '{"deleted", "restored_fields", "kept_fields"}'
            400:
              $ref: '#/components/responses/400'
        """
        try:
            result = importer.revert(pk)
        except importer.RevertRefused as exc:
            db.session.rollback()
            return self.response_400(message={"status": [str(exc)]})
        db.session.commit()
        return self.response(200, **result)


class AnalyticsApi(BaseApi):
    """``GET /api/v1/web_analytics/?days=30&site_id=1``."""

    resource_name = "web_analytics"
    class_permission_name = "Analytics"
    method_permission_name = {"summary": "read"}
    base_permissions = ["can_read"]
    allow_browser_login = True
    openapi_spec_tag = "Behaviour events"

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("summary")
    def summary(self) -> Any:
        """Visitors, page views, sessions, bounce and conversion rate, top pages and
        products.
        ---
        get:
          parameters:
          - {in: query, name: days, schema: {type: integer, default: 30}}
          - {in: query, name: site_id, schema: {type: integer}}
          responses:
            200:
              description: '{"summary": {...}, "top_pages": [...], "top_products": [...]}'
        """
        days = request.args.get("days", "30")
        site = request.args.get("site_id")
        if not days.isdigit() or not 1 <= int(days) <= 366:
            return self.response_400(message={"days": ["A number of days from 1 to 366."]})
        if site is not None and not site.isdigit():
            return self.response_400(message={"site_id": ["Not a valid integer."]})
        days_i, site_i = int(days), int(site) if site else None
        return self.response(200, summary=analytics.summary(days_i, site_i),
                             top_pages=analytics.top_pages(days_i, site_i),
                             top_products=analytics.top_products(days_i, site_i))
