"""The plugin's own pages: imports (upload, mapping, live progress, revert),
the duplicate review screen, connectors and web analytics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, flash, g, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import select

from trellis import rules
from trellis.db import db
from trellis.export import write as write_table
from trellis.jobs import enqueue

from trellis_integrations import analytics, connectors, dedupe, importer
from trellis_integrations.models import (
    IMPORT_MODES,
    ON_MATCH,
    DuplicateCandidate,
    ImportRun,
    TrackingSite,
)

HERE = Path(__file__).resolve().parent
RUN_JOB = "integrations.run_import"


class _Page(BaseView):
    template_folder = str(HERE / "templates")

    def create_blueprint(self, appbuilder: Any, endpoint: str | None = None,
                         static_folder: str | None = None) -> Any:
        return super().create_blueprint(appbuilder, endpoint,
                                         static_folder or str(HERE / "static"))


def _user_id() -> int | None:
    user = getattr(g, "user", None)
    return user.id if getattr(user, "is_authenticated", False) else None


def run_status(run: ImportRun) -> dict[str, Any]:
    """What the progress page and the API show about an import."""
    total = run.total_rows or 0
    return {"id": run.id, "model": run.model, "filename": run.filename, "source": run.source,
            "status": run.status, "dry_run": run.dry_run, "mode": run.mode,
            "match_on": run.match_on, "on_match": run.on_match, "mapping": run.mapping,
            "total": total, "processed": run.processed_rows,
            "percent": round(100.0 * run.processed_rows / total, 1) if total else (
                100.0 if run.status in ("done", "failed", "reverted") else 0.0),
            "created": run.created_count, "updated": run.updated_count,
            "unchanged": run.unchanged_count, "skipped": run.skipped_count,
            "errors": run.error_count, "message": run.message,
            "finished": run.status in ("done", "failed", "reverted")}


def start(run: ImportRun) -> None:
    """Mark the run ready and send it to the workers (after the commit)."""
    db.session.flush()
    run_id = run.id
    run.status = "pending"
    db.session.commit()
    # the id was read before the commit: touching the expired object now would open a
    # read transaction that an in-process job's writes on SQLite would wait for
    enqueue(RUN_JOB, import_id=run_id)


class ImportsView(_Page):
    """``/integrations/imports/``: upload, map, preview, run with live progress."""

    route_base = "/integrations/imports"
    default_view = "index"
    class_permission_name = "Import"
    method_permission_name = {"index": "read", "show": "read", "status": "read",
                              "errors": "read", "upload": "write", "configure": "write",
                              "revert": "write", "again": "write"}
    base_permissions = ["can_read", "can_write"]

    @expose("/")
    @has_access
    def index(self) -> Any:
        runs = db.session.scalars(select(ImportRun).order_by(ImportRun.id.desc())
                                  .limit(50)).all()
        return self.render_template("integrations/imports.html", runs=runs,
                                    models=importer.importable_models())

    @expose("/upload", methods=["POST"])
    @has_access
    def upload(self) -> Any:
        upload = request.files.get("file")
        model = request.form.get("model", "")
        source = (request.form.get("source") or "").strip()[:100] or None
        if upload is None or not upload.filename:
            flash(_("Choose a CSV or XLSX file."), "danger")
            return redirect(url_for(".index"))
        data = upload.read()
        if model not in {e.name for e in importer.importable_models()}:
            flash(f"model: {model!r} cannot be imported.", "danger")
            return redirect(url_for(".index"))
        try:
            entry = importer.registry_entry(model)
            fmt = importer.detect_format(upload.filename, data)
            header, _rows = importer.read(data, fmt)
        except KeyError:
            flash(f"model: no model named {model!r}.", "danger")
            return redirect(url_for(".index"))
        except importer.ImportFailed as exc:
            flash(f"file: {exc}", "danger")
            return redirect(url_for(".index"))
        run = ImportRun(model=entry.name, data=data, filename=upload.filename[:255],
                        file_format=fmt, source=source, status="draft",
                        mapping=importer.suggest_mapping(header, entry, source),
                        match_on="email" if "email" in importer.match_keys(entry) else "none",
                        created_by_id=_user_id(), total_rows=importer.count_rows(data, fmt))
        db.session.add(run)
        db.session.commit()
        return redirect(url_for(".configure", import_id=run.id))

    @expose("/<int:import_id>/configure", methods=["GET", "POST"])
    @has_access
    def configure(self, import_id: int) -> Any:
        run = db.session.get(ImportRun, import_id) or abort(404)
        if run.status != "draft":
            return redirect(url_for(".show", import_id=run.id))
        entry = importer.registry_entry(run.model)
        header, rows = importer.read(run.data or b"", run.file_format)
        preview = [cells for _, (_, cells) in zip(range(10), rows)]
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            mapping = {col: request.form.get(f"map-{i}", "") for i, col in enumerate(header)}
            mapping = {c: f for c, f in mapping.items() if f}
            run.mapping = mapping
            run.match_on = request.form.get("match_on", "none")
            run.on_match = request.form.get("on_match", "update")
            run.mode = request.form.get("mode", "skip_bad")
            run.dry_run = request.form.get("dry_run") == "1"
            errors = importer.check_options(entry, header, mapping, run.match_on,
                                            run.on_match, run.mode)
            if not errors:
                if run.source:
                    importer.save_mapping(run.source, run.model, mapping)
                start(run)
                return redirect(url_for(".show", import_id=run.id))
            db.session.rollback()
            run = db.session.get(ImportRun, import_id)
            run.mapping, run.match_on = mapping, request.form.get("match_on", "none")
        return self.render_template(
            "integrations/import_configure.html", run=run, entry=entry, header=header,
            preview=preview, fields=importer.fields_of(entry), errors=errors,
            match_keys=importer.match_keys(entry), on_match=ON_MATCH, modes=IMPORT_MODES)

    @expose("/<int:import_id>")
    @has_access
    def show(self, import_id: int) -> Any:
        run = db.session.get(ImportRun, import_id) or abort(404)
        header, rows = importer.error_report(run.id)
        return self.render_template("integrations/import_show.html", run=run,
                                    status=run_status(run), error_header=header,
                                    error_rows=rows[:50], more_errors=max(0, len(rows) - 50))

    @expose("/<int:import_id>/status")
    @has_access
    def status(self, import_id: int) -> Any:
        run = db.session.get(ImportRun, import_id)
        if run is None:
            return jsonify(message="Not found"), 404
        return jsonify(run_status(run))

    @expose("/<int:import_id>/errors.<fmt>")
    @has_access
    def errors(self, import_id: int, fmt: str) -> Any:
        from flask import send_file

        if fmt not in ("csv", "xlsx") or db.session.get(ImportRun, import_id) is None:
            abort(404)
        header, rows = importer.error_report(import_id)
        out, _count = write_table(rows, header, fmt)
        from trellis.export import FORMATS

        return send_file(out, mimetype=FORMATS[fmt], as_attachment=True,
                         download_name=f"import-{import_id}-errors.{fmt}")

    @expose("/<int:import_id>/revert", methods=["POST"])
    @has_access
    def revert(self, import_id: int) -> Any:
        try:
            result = importer.revert(import_id)
        except importer.RevertRefused as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        else:
            db.session.commit()
            flash(f"Import reverted: {result['deleted']} record(s) deleted, "
                  f"{result['restored_fields']} field(s) restored"
                  + (f", {result['kept_fields']} changed since and kept."
                     if result["kept_fields"] else "."), "info")
        return redirect(url_for(".show", import_id=import_id))

    @expose("/<int:import_id>/again", methods=["POST"])
    @has_access
    def again(self, import_id: int) -> Any:
        """Run a dry run's import for real (same file, same options)."""
        run = db.session.get(ImportRun, import_id) or abort(404)
        if not run.dry_run or run.data is None:
            abort(400)
        copy = ImportRun(model=run.model, data=run.data, filename=run.filename,
                         file_format=run.file_format, mapping=run.mapping,
                         match_on=run.match_on, on_match=run.on_match, mode=run.mode,
                         dry_run=False, source=run.source, created_by_id=_user_id(),
                         total_rows=run.total_rows, status="draft")
        db.session.add(copy)
        db.session.flush()
        start(copy)
        return redirect(url_for(".show", import_id=copy.id))


# ------------------------------------------------------------------ duplicates


def _labels(model: str, ids: set[int]) -> dict[int, Any]:
    cls = dedupe.model_class(model)
    stmt = rules.restrict(select(cls).where(cls.id.in_(ids)), cls)
    return {r.id: r for r in db.session.scalars(stmt)}


def candidate_rows(model: str, limit: int = 100) -> list[dict[str, Any]]:
    """Open candidates whose two records the user may both see, best first."""
    rows = db.session.scalars(select(DuplicateCandidate).where(
        DuplicateCandidate.model == model, DuplicateCandidate.status == "open")
        .order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.id).limit(limit * 3)).all()
    records = _labels(model, {r.a_id for r in rows} | {r.b_id for r in rows})
    out = []
    for row in rows:
        a, b = records.get(row.a_id), records.get(row.b_id)
        if a is None or b is None:
            continue
        out.append({"id": row.id, "model": model, "score": row.score, "reasons": row.reasons,
                    "a": {"id": a.id, "label": str(a)}, "b": {"id": b.id, "label": str(b)}})
        if len(out) >= limit:
            break
    return out


class DuplicatesView(_Page):
    """``/integrations/duplicates/``: candidates, side by side, merge and undo."""

    route_base = "/integrations/duplicates"
    default_view = "index"
    class_permission_name = "Duplicate"
    method_permission_name = {"index": "read", "review": "read", "merge": "write",
                              "undo": "write", "dismiss": "write", "scan": "write"}
    base_permissions = ["can_read", "can_write"]

    @expose("/")
    @has_access
    def index(self) -> Any:
        model = request.args.get("model", "contact")
        if model not in dedupe.MODELS:
            abort(404)
        return self.render_template("integrations/duplicates.html", model=model,
                                    candidates=candidate_rows(model))

    @expose("/scan", methods=["POST"])
    @has_access
    def scan(self) -> Any:
        enqueue("integrations.find_duplicates")
        flash(_("Looking for duplicates; the list fills in when the job has run."), "info")
        return redirect(url_for(".index", model=request.form.get("model", "contact")))

    @expose("/<int:pk>")
    @has_access
    def review(self, pk: int) -> Any:
        candidate = db.session.get(DuplicateCandidate, pk) or abort(404)
        records = _labels(candidate.model, {candidate.a_id, candidate.b_id})
        a, b = records.get(candidate.a_id), records.get(candidate.b_id)
        if a is None or b is None:
            abort(404)
        preview = None
        winner = request.args.get("winner", type=int) or a.id
        if winner not in (a.id, b.id):
            abort(400)
        loser = b if winner == a.id else a
        from trellis_integrations.web import do_merge

        status, preview = do_merge({"model": candidate.model, "winner_id": winner,
                                    "loser_ids": [loser.id], "dry_run": True})
        fields = dedupe.record_fields(candidate.model)
        keep = a if winner == a.id else b
        take = {f: (loser.id if getattr(keep, f) is None and getattr(loser, f) is not None
                    else keep.id) for f in fields}
        return self.render_template("integrations/duplicate_review.html", candidate=candidate,
                                    a=a, b=b, winner=winner, loser=loser, take=take,
                                    fields=fields, preview=preview if status == 200 else None,
                                    problem=preview if status != 200 else None)

    @expose("/<int:pk>/merge", methods=["POST"])
    @has_access
    def merge(self, pk: int) -> Any:
        from trellis_integrations.web import do_merge

        candidate = db.session.get(DuplicateCandidate, pk) or abort(404)
        winner = request.form.get("winner_id", type=int)
        loser = candidate.b_id if winner == candidate.a_id else candidate.a_id
        fields = dedupe.record_fields(candidate.model)
        cls = dedupe.model_class(candidate.model)
        records = {r.id: r for r in db.session.scalars(
            select(cls).where(cls.id.in_([candidate.a_id, candidate.b_id])))}
        values = {}
        for name in fields:
            source = request.form.get(f"take-{name}", type=int)
            if source in records and source != winner:
                values[name] = getattr(records[source], name)
        values = {k: (v if not hasattr(v, "isoformat") else v.isoformat())
                  for k, v in values.items()}
        status, body = do_merge({"model": candidate.model, "winner_id": winner,
                                 "loser_ids": [loser], "values": values})
        if status != 200:
            flash("Not merged: " + "; ".join(f"{k}: {v}" for k, v in
                                              body["message"].items()), "danger")
            return redirect(url_for(".review", pk=pk, winner=winner))
        candidate = db.session.get(DuplicateCandidate, pk)
        candidate.status, candidate.merge_id = "merged", body["merge_id"]
        db.session.commit()
        moved = sum(r["rows"] for r in body["references"])
        flash(_("Merged into #%(id)s: %(moved)s related record(s) moved.", id=winner, moved=moved),
              "info")
        return self.render_template("integrations/duplicate_merged.html", result=body,
                                    candidate=candidate)

    @expose("/merges/<int:merge_id>/undo", methods=["POST"])
    @has_access
    def undo(self, merge_id: int) -> Any:
        from trellis_integrations.web import do_undo

        status, body = do_undo(merge_id)
        if status == 200:
            flash(f"Merge undone: {len(body['loser_ids'])} record(s) restored.", "info")
        else:
            flash(f"Not undone: {body.get('message')}", "danger")
        return redirect(url_for(".index"))

    @expose("/<int:pk>/dismiss", methods=["POST"])
    @has_access
    def dismiss(self, pk: int) -> Any:
        candidate = db.session.get(DuplicateCandidate, pk) or abort(404)
        candidate.status = "dismissed"
        db.session.commit()
        flash(_("Marked as not a duplicate."), "info")
        return redirect(url_for(".index", model=candidate.model))


# ------------------------------------------------------------------ connectors & analytics


class ConnectorsView(_Page):
    """``/integrations/connectors/``: e-mail connection tests, chat bots, plugins'
    connectors."""

    route_base = "/integrations/connectors"
    default_view = "index"
    class_permission_name = "Connectors"
    method_permission_name = {"index": "read", "test": "write"}
    base_permissions = ["can_read", "can_write"]

    @expose("/")
    @has_access
    def index(self) -> Any:
        return self.render_template("integrations/connectors.html",
                                    plugin_connectors=connectors.connectors(),
                                    kinds=connectors.endpoint_kinds(), result=None)

    @expose("/test/<what>", methods=["POST"])
    @has_access
    def test(self, what: str) -> Any:
        if what == "smtp":
            result = connectors.test_smtp()
        elif what == "imap":
            result = connectors.test_imap()
        else:
            abort(404)
        return self.render_template("integrations/connectors.html",
                                    plugin_connectors=connectors.connectors(),
                                    kinds=connectors.endpoint_kinds(),
                                    result={"what": what.upper(), **result})


class AnalyticsView(_Page):
    """``/integrations/analytics/``: visitors, page views, bounce and conversion."""

    route_base = "/integrations/analytics"
    default_view = "index"
    class_permission_name = "Analytics"
    method_permission_name = {"index": "read"}
    base_permissions = ["can_read"]

    @expose("/")
    @has_access
    def index(self) -> Any:
        days = max(1, min(request.args.get("days", 30, type=int), 366))
        site_id = request.args.get("site", type=int)
        return self.render_template(
            "integrations/analytics.html", days=days, site_id=site_id,
            sites=db.session.scalars(select(TrackingSite).order_by(TrackingSite.name)).all(),
            summary=analytics.summary(days, site_id),
            pages=analytics.top_pages(days, site_id),
            products=analytics.top_products(days, site_id))
