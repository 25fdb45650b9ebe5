"""*Admin > Automation*: the rules, their builder, runs and dry runs, and the REST
API ``/api/v1/automation/`` the pages call.

Both need ``core.Automation``: ``can_read`` to see rules, versions, runs and to
dry-run, ``can_write`` to create, change, restore and delete rules.  A bad
definition answers 400 with ``{"message": {path: [messages]}}``.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, request
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import select

from trellis import actions, conditions
from trellis.automation import definition, engine
from trellis.automation.models import AutomationRule, AutomationRuleVersion, AutomationRun
from trellis.db import db

RESOURCE = "core.Automation"
#: Most runs one page of the log shows.
RUNS_PAGE = 100


def _user_id() -> int | None:
    user = getattr(g, "user", None)
    return getattr(user, "id", None)


def rule_dict(rule: AutomationRule) -> dict[str, Any]:
    return {"id": rule.id, **engine.as_definition(rule), "version": rule.version,
            "next_run_at": rule.next_run_at.isoformat() if rule.next_run_at else None,
            "updated_on": rule.updated_on.isoformat() if rule.updated_on else None}


def run_dict(run: AutomationRun) -> dict[str, Any]:
    return {"id": run.id, "rule_id": run.rule_id, "version": run.version,
            "trigger": run.trigger, "event_id": run.event_id, "record_ids": run.record_ids,
            "matched_ids": run.matched_ids, "outcome": run.outcome, "status": run.status,
            "error": run.error, "dry_run": run.dry_run, "chain": run.chain,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None}


def catalogue(model: str | None) -> dict[str, Any]:
    """What the builder offers: models, trigger kinds and, for ``model``, its
    condition types, fields and the actions that apply to it."""
    from trellis.extension import current_trellis

    out: dict[str, Any] = {
        "models": [{"name": e.name, "label": e.label} for e in current_trellis().registry],
        "trigger_kinds": list(definition.TRIGGER_KINDS), "record_on": list(definition.RECORD_ON),
        "operators": {k: list(v) for k, v in conditions.OPERATORS.items()}}
    if model is not None and model in current_trellis().registry:
        out["condition_types"] = conditions.describe(model)
        out["date_fields"] = definition._record_columns(model, ("date",))
        out["fields"] = definition._record_columns(model)
        out["actions"] = [{"name": a.name, "label": a.label, "description": a.description,
                           "params": {k: {"required": f.required,
                                          "description": f.metadata.get("description", "")}
                                      for k, f in a.schema().fields.items()}}
                          for a in actions.available(model)]
    return out


def runs(rule_id: int | None = None, limit: int = RUNS_PAGE) -> list[AutomationRun]:
    stmt = select(AutomationRun).order_by(AutomationRun.id.desc()).limit(limit)
    if rule_id is not None:
        stmt = stmt.where(AutomationRun.rule_id == rule_id)
    return list(db.session.scalars(stmt))


def _ids(raw: Any) -> list[int] | None:
    """``record_ids`` of a dry-run request; ``ValueError`` when malformed."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [p for p in raw.replace(" ", "").split(",") if p]
    if not isinstance(raw, list) or len(raw) > 500 or not all(
            isinstance(i, int) and not isinstance(i, bool) or isinstance(i, str) and i.isdigit()
            for i in raw):
        raise ValueError("record_ids must be a list of up to 500 record ids.")
    return [int(i) for i in raw]


class AutomationView(BaseView):
    """``/automation/``: rules, the builder, runs and dry runs."""

    route_base = "/automation"
    default_view = "index"
    class_permission_name = RESOURCE
    method_permission_name = {"index": "read", "builder": "read", "runs_page": "read",
                              "dry_run_page": "read"}
    base_permissions = ["can_read", "can_write"]

    @expose("/")
    @has_access
    def index(self) -> Any:
        rules = db.session.scalars(select(AutomationRule).order_by(AutomationRule.name,
                                                                   AutomationRule.id)).all()
        return self.render_template("trellis/automation_rules.html", rules=rules,
                                    can_write=self.appbuilder.sm.has_access("can_write",
                                                                            RESOURCE))

    @expose("/builder")
    @expose("/builder/<int:rule_id>")
    @has_access
    def builder(self, rule_id: int | None = None) -> Any:
        rule = None
        if rule_id is not None:
            rule = db.session.get(AutomationRule, rule_id)
            if rule is None:
                abort(404)
        versions = [] if rule is None else db.session.scalars(
            select(AutomationRuleVersion).where(AutomationRuleVersion.rule_id == rule.id)
            .order_by(AutomationRuleVersion.version.desc())).all()
        return self.render_template(
            "trellis/automation_builder.html", rule=rule_dict(rule) if rule else None,
            versions=versions, condition_labels=conditions.builder_labels(),
            can_write=self.appbuilder.sm.has_access("can_write", RESOURCE))

    @expose("/runs")
    @expose("/runs/<int:rule_id>")
    @has_access
    def runs_page(self, rule_id: int | None = None) -> Any:
        names = dict(db.session.execute(select(AutomationRule.id, AutomationRule.name)).all())
        return self.render_template("trellis/automation_runs.html", runs=runs(rule_id),
                                    names=names, rule_id=rule_id)

    @expose("/dry_run/<int:rule_id>", methods=["GET", "POST"])
    @has_access
    def dry_run_page(self, rule_id: int) -> Any:
        rule = db.session.get(AutomationRule, rule_id)
        if rule is None:
            abort(404)
        result, error = None, None
        if request.method == "POST":
            try:
                ids = _ids(request.form.get("record_ids") or None)
                result = engine.dry_run(engine.as_definition(rule), ids, rule=rule)
            except ValueError as exc:
                error = str(exc)
        return self.render_template("trellis/automation_dry_run.html", rule=rule,
                                    result=result, error=error)


class AutomationApi(BaseApi):
    """``/api/v1/automation/``: rules, versions, runs and dry runs."""

    resource_name = "automation"
    class_permission_name = RESOURCE
    method_permission_name = {
        "get_catalogue": "read", "list_rules": "read", "get_rule": "read",
        "list_versions": "read", "list_runs": "read", "dry_run": "read",
        "dry_run_rule": "read", "create_rule": "write", "update_rule": "write",
        "delete_rule": "write", "restore_rule": "write"}
    allow_browser_login = True
    openapi_spec_tag = "Automation"

    def _rule(self, rule_id: int) -> AutomationRule | None:
        return db.session.get(AutomationRule, rule_id)

    @expose("/catalogue", methods=["GET"])
    @protect()
    @safe
    @permission_name("get_catalogue")
    def get_catalogue(self) -> Any:
        """Models, trigger kinds, and for ``?model=`` its conditions and actions.
        ---
        get:
          parameters:
          - {in: query, name: model, schema: {type: string}}
          responses:
            200: {description: "result: {models, trigger_kinds, condition_types, actions}"}
        """
        return self.response(200, result=catalogue(request.args.get("model")))

    @expose("/rules", methods=["GET"])
    @protect()
    @safe
    @permission_name("list_rules")
    def list_rules(self) -> Any:
        """Every rule.
        ---
        get:
          responses:
            200: {description: "result: [rule]"}
        """
        rules = db.session.scalars(select(AutomationRule).order_by(AutomationRule.id))
        return self.response(200, result=[rule_dict(r) for r in rules])

    @expose("/rules", methods=["POST"])
    @protect()
    @safe
    @permission_name("create_rule")
    def create_rule(self) -> Any:
        """Create a rule from a definition (version 1).
        ---
        post:
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            201: {description: "the rule"}
            400: {$ref: '#/components/responses/400'}
        """
        try:
            rule = engine.save(db.session, request.get_json(silent=True), user_id=_user_id())
        except engine.RuleInvalid as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        db.session.commit()
        return self.response(201, result=rule_dict(rule))

    @expose("/rules/<int:rule_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get_rule")
    def get_rule(self, rule_id: int) -> Any:
        """One rule.
        ---
        get:
          parameters:
          - {in: path, name: rule_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "the rule"}
            404: {$ref: '#/components/responses/404'}
        """
        rule = self._rule(rule_id)
        return self.response_404() if rule is None else self.response(200, result=rule_dict(rule))

    @expose("/rules/<int:rule_id>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("update_rule")
    def update_rule(self, rule_id: int) -> Any:
        """Change a rule (a new version when anything changed).
        ---
        put:
          parameters:
          - {in: path, name: rule_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "the rule"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        rule = self._rule(rule_id)
        if rule is None:
            return self.response_404()
        try:
            engine.save(db.session, request.get_json(silent=True), rule, user_id=_user_id())
        except engine.RuleInvalid as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        db.session.commit()
        return self.response(200, result=rule_dict(rule))

    @expose("/rules/<int:rule_id>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("delete_rule")
    def delete_rule(self, rule_id: int) -> Any:
        """Delete a rule with its versions and runs.
        ---
        delete:
          parameters:
          - {in: path, name: rule_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "deleted"}
            404: {$ref: '#/components/responses/404'}
        """
        rule = self._rule(rule_id)
        if rule is None:
            return self.response_404()
        db.session.delete(rule)
        db.session.commit()
        return self.response(200, message="Deleted")

    @expose("/rules/<int:rule_id>/versions", methods=["GET"])
    @protect()
    @safe
    @permission_name("list_versions")
    def list_versions(self, rule_id: int) -> Any:
        """A rule's versions, newest first.
        ---
        get:
          parameters:
          - {in: path, name: rule_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "result: [{version, definition, note, created_by, created_on}]"}
            404: {$ref: '#/components/responses/404'}
        """
        if self._rule(rule_id) is None:
            return self.response_404()
        rows = db.session.scalars(select(AutomationRuleVersion).where(
            AutomationRuleVersion.rule_id == rule_id)
            .order_by(AutomationRuleVersion.version.desc()))
        return self.response(200, result=[
            {"version": v.version, "definition": v.definition, "note": v.note,
             "created_by": v.created_by, "created_on": v.created_on.isoformat()} for v in rows])

    @expose("/rules/<int:rule_id>/restore", methods=["POST"])
    @protect()
    @safe
    @permission_name("restore_rule")
    def restore_rule(self, rule_id: int) -> Any:
        """Make a new version copying ``{"version": N}``.
        ---
        post:
          parameters:
          - {in: path, name: rule_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "the rule"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        rule = self._rule(rule_id)
        if rule is None:
            return self.response_404()
        version = (request.get_json(silent=True) or {}).get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            return self.response_400(message={"version": ["Must be a version number."]})
        try:
            engine.restore(db.session, rule, version, user_id=_user_id())
        except engine.RuleInvalid as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        db.session.commit()
        return self.response(200, result=rule_dict(rule))

    @expose("/rules/<int:rule_id>/dry_run", methods=["POST"])
    @protect()
    @safe
    @permission_name("dry_run_rule")
    def dry_run_rule(self, rule_id: int) -> Any:
        """Dry-run a saved rule on ``{"record_ids": [...]}`` (else the first matching
        records); logged as a dry run, nothing else is written.
        ---
        post:
          parameters:
          - {in: path, name: rule_id, required: true, schema: {type: integer}}
          responses:
            200: {description: "result: {records: [{id, label, matches}], actions, run_id}"}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        rule = self._rule(rule_id)
        if rule is None:
            return self.response_404()
        try:
            ids = _ids((request.get_json(silent=True) or {}).get("record_ids"))
            return self.response(200, result=engine.dry_run(engine.as_definition(rule), ids,
                                                            rule=rule))
        except engine.RuleInvalid as exc:
            return self.response_400(message=exc.messages)
        except ValueError as exc:
            return self.response_400(message={"record_ids": [str(exc)]})

    @expose("/dry_run", methods=["POST"])
    @protect()
    @safe
    @permission_name("dry_run")
    def dry_run(self) -> Any:
        """Dry-run an unsaved definition: ``{"rule": {...}, "record_ids": [...]}``.
        ---
        post:
          responses:
            200: {description: "result: {records: [{id, label, matches}], actions}"}
            400: {$ref: '#/components/responses/400'}
        """
        body = request.get_json(silent=True) or {}
        try:
            ids = _ids(body.get("record_ids"))
            return self.response(200, result=engine.dry_run(body.get("rule"), ids))
        except engine.RuleInvalid as exc:
            return self.response_400(message={f"rule.{k}": v for k, v in exc.messages.items()})
        except ValueError as exc:
            return self.response_400(message={"record_ids": [str(exc)]})

    @expose("/runs", methods=["GET"])
    @protect()
    @safe
    @permission_name("list_runs")
    def list_runs(self) -> Any:
        """The latest runs (``?rule_id=`` for one rule's).
        ---
        get:
          parameters:
          - {in: query, name: rule_id, schema: {type: integer}}
          responses:
            200: {description: "result: [run]"}
        """
        rule_id = request.args.get("rule_id", type=int)
        return self.response(200, result=[run_dict(r) for r in runs(rule_id)])
