"""Admin pages and APIs of the core: plugins, plugin settings, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, action, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_appbuilder.security.sqla.models import ApiKey
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from marshmallow import ValidationError, fields
from sqlalchemy import select

from trellis import lifecycle
from trellis.api import TrellisModelApi
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.extension import current_trellis
from wtforms.validators import AnyOf

from trellis.models import AuditEntry, RoleScope, Team
from trellis.rules import SCOPES
from trellis.plugins import PluginError
from trellis.settings import SettingsError, get_settings, update_settings
from trellis.views import VIEW_PERMISSIONS, TrellisModelView

READ_WRITE = {"revoke": "write", "action": "write", "action_post": "write", "list": "read", "info": "read", "get": "read", "show": "read",
              "record": "read", "toggle": "write", "put": "write", "edit": "write"}


def plugin_rows() -> list[dict[str, Any]]:
    """Every discovered plugin with its state, for the page, the API and the CLI."""
    ext = current_trellis()
    rows = []
    for plugin in ext.plugins.all():
        row = plugin.as_dict()
        row["enabled"] = ext.is_enabled(plugin.name, fresh=True)
        row["dependents"] = sorted(ext.plugins.dependents_of(plugin.name)) if plugin.ok else []
        row["has_settings"] = plugin.name in ext.settings_schemas
        rows.append(row)
    return rows


class ActionForm(FlaskForm):
    """Empty form: only its CSRF token is checked."""


class PluginsView(BaseView):
    """Admin > Plugins: list, enable and disable plugins."""

    route_base = "/plugins"
    default_view = "list"
    class_permission_name = "core.Plugins"
    method_permission_name = READ_WRITE

    @expose("/")
    @has_access
    def list(self):
        return self.render_template("trellis/plugins.html", plugins=plugin_rows(),
                                    form=ActionForm())

    @expose("/<name>/<action>", methods=["POST"])
    @has_access
    def toggle(self, name: str, action: str):
        form = ActionForm()
        if not form.validate_on_submit():
            flash(_("The form expired; please try again."), "danger")
            return redirect(url_for(".list"))
        if action not in ("enable", "disable"):
            abort(404)
        try:
            getattr(lifecycle, action)(current_trellis(), name)
            flash(_("Plugin %(name)s enabled.", name=name) if action == "enable"
                  else _("Plugin %(name)s disabled.", name=name), "success")
        except PluginError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        return redirect(url_for(".list"))


class PluginsApi(BaseApi):
    """``/api/v1/plugins/``: list, enable, disable."""

    resource_name = "plugins"
    class_permission_name = "core.Plugins"
    method_permission_name = READ_WRITE
    allow_browser_login = True
    openapi_spec_tag = "Plugins"

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("list")
    def list(self):
        """List installed plugins with version, dependencies, state and errors.
        ---
        get:
          responses:
            200:
              description: The plugins
            401:
              $ref: '#/components/responses/401'
        """
        return self.response(200, result=plugin_rows())

    @expose("/<name>/<action>", methods=["POST"])
    @protect()
    @safe
    @permission_name("toggle")
    def toggle(self, name: str, action: str):
        """Enable or disable a plugin.
        ---
        post:
          parameters:
          - in: path
            name: name
            schema: {type: string}
          - in: path
            name: action
            schema: {type: string, enum: [enable, disable]}
          responses:
            200:
              description: Done
            400:
              $ref: '#/components/responses/400'
            404:
              $ref: '#/components/responses/404'
        """
        ext = current_trellis()
        if action not in ("enable", "disable") or name not in ext.plugins.by_name:
            return self.response_404()
        try:
            getattr(lifecycle, action)(ext, name)
        except PluginError as exc:
            db.session.rollback()
            return self.response_400(message=str(exc))
        return self.response(200, name=name, enabled=ext.is_enabled(name, fresh=True))


class SettingsApi(BaseApi):
    """``/api/v1/settings/<plugin>``: read and change a plugin's settings."""

    resource_name = "settings"
    class_permission_name = "core.Settings"
    method_permission_name = READ_WRITE
    allow_browser_login = True
    openapi_spec_tag = "Settings"

    @expose("/<plugin>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, plugin: str):
        """A plugin's settings.
        ---
        get:
          parameters:
          - in: path
            name: plugin
            schema: {type: string}
          responses:
            200:
              description: The settings
            404:
              $ref: '#/components/responses/404'
        """
        try:
            schema = current_trellis().settings_schemas[plugin]()
            return self.response(200, result=schema.dump(get_settings(plugin)))
        except (KeyError, SettingsError):
            return self.response_404()

    @expose("/<plugin>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, plugin: str):
        """Change some of a plugin's settings; 400 with per-field errors.
        ---
        put:
          parameters:
          - in: path
            name: plugin
            schema: {type: string}
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            200:
              description: The stored settings
            400:
              $ref: '#/components/responses/400'
            404:
              $ref: '#/components/responses/404'
        """
        ext = current_trellis()
        if plugin not in ext.settings_schemas:
            return self.response_404()
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return self.response_400(message="the body must be a JSON object")
        try:
            values = update_settings(plugin, data)
        except ValidationError as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        return self.response(200, result=ext.settings_schemas[plugin]().dump(values))


def _form_value(field: fields.Field, raw: str | None) -> Any:
    if isinstance(field, fields.Boolean):
        return raw is not None
    return raw


class SettingsView(BaseView):
    """Admin > Settings: a form per plugin, generated from its schema."""

    route_base = "/settings"
    default_view = "list"
    class_permission_name = "core.Settings"
    method_permission_name = READ_WRITE

    @expose("/")
    @has_access
    def list(self):
        ext = current_trellis()
        names = [p.name for p in ext.plugins.loaded() if p.name in ext.settings_schemas]
        return self.render_template("trellis/settings_index.html", names=names,
                                    plugins=ext.plugins.by_name)

    @expose("/<plugin>", methods=["GET", "POST"])
    @has_access
    def edit(self, plugin: str):
        ext = current_trellis()
        if plugin not in ext.settings_schemas:
            abort(404)
        schema = ext.settings_schemas[plugin]()
        form = ActionForm()
        errors: dict[str, Any] = {}
        values = schema.dump(get_settings(plugin))
        if request.method == "POST":
            submitted = {name: _form_value(f, request.form.get(name))
                         for name, f in schema.fields.items() if not f.dump_only}
            if not form.validate_on_submit():
                errors = {"_form": ["The form expired; please try again."]}
            else:
                try:
                    update_settings(plugin, submitted)
                    flash(_("Settings saved."), "success")
                    return redirect(url_for(".edit", plugin=plugin))
                except ValidationError as exc:
                    db.session.rollback()
                    errors = exc.messages  # type: ignore[assignment]
            values = {**values, **submitted}
        return self.render_template(
            "trellis/settings.html", plugin=ext.plugins.by_name[plugin], schema=schema,
            values=values, errors=errors, form=form, fields=fields,
        )


class AuditView(TrellisModelView):
    """Admin > Audit log (read-only), and the history of one record."""

    datamodel = TrellisSQLAInterface(AuditEntry)
    class_permission_name = "core.Audit"
    method_permission_name = {**VIEW_PERMISSIONS, "record": "read"}
    base_permissions = ["can_read"]
    list_columns = ["occurred_at", "username", "source", "action", "model", "record_id"]
    show_columns = list_columns + ["changes"]
    search_columns = ["username", "source", "action", "model", "record_id"]
    base_order = ("id", "desc")

    @expose("/record/<model>/<record_id>")
    @has_access
    def record(self, model: str, record_id: str):
        rows = db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.model == model, AuditEntry.record_id == record_id)
            .order_by(AuditEntry.id.desc())
        ).all()
        return self.render_template("trellis/audit_record.html", rows=rows, model=model,
                                    record_id=record_id)


class AuditApi(TrellisModelApi):
    """``/api/v1/audit/``: the audit log, read-only; filter by model and record_id."""

    resource_name = "audit"
    datamodel = TrellisSQLAInterface(AuditEntry)
    class_permission_name = "core.Audit"
    include_route_methods = {"get_list", "get", "info"}
    list_columns = ["id", "occurred_at", "user_id", "username", "source", "action", "model",
                    "record_id", "changes"]
    show_columns = list_columns
    search_columns = ["model", "record_id", "action", "username", "source"]
    order_columns = ["id", "occurred_at"]
    base_order = ("id", "desc")


class ApiKeyAdminView(TrellisModelView):
    """Admin > API keys: every user's personal API keys; revoke any of them.

    Users create and revoke their own keys through FAB's
    ``/api/v1/security/api_keys/`` API; the secret is shown once, only its
    hash is stored.
    """

    datamodel = TrellisSQLAInterface(ApiKey)
    class_permission_name = "core.ApiKeys"
    base_permissions = ["can_read", "can_write"]
    list_columns = ["name", "user", "key_prefix", "active", "created_on", "last_used_on",
                    "expires_on", "revoked_on"]
    show_columns = list_columns + ["scopes"]
    search_columns = ["name", "user", "active"]

    @action("revoke", "Revoke", "Revoke the selected keys? Clients using them stop working.",
            "fa-ban")
    def revoke(self, items):
        keys = items if isinstance(items, list) else [items]
        now = datetime.now()
        for key in keys:
            key.active = False
            key.revoked_on = now
        db.session.commit()
        flash(_("Revoked %(count)s API key(s).", count=len(keys)), "success")
        return redirect(url_for(".list"))


class TeamView(TrellisModelView):
    """Admin > Teams: who works together (the "team" record rule)."""

    datamodel = TrellisSQLAInterface(Team)
    class_permission_name = "core.Teams"
    list_columns = ["name", "manager"]
    add_columns = edit_columns = show_columns = ["name", "manager", "members"]


class RoleScopeView(TrellisModelView):
    """Admin > Record rules: which owned records each role sees."""

    datamodel = TrellisSQLAInterface(RoleScope)
    class_permission_name = "core.RecordRules"
    list_columns = add_columns = edit_columns = show_columns = ["role", "scope"]
    description_columns = {"scope": "own: their records; team: their teams' records; all: every "
                                    "record. Roles without a rule see all."}
    validators_columns = {"scope": [AnyOf(list(SCOPES), message="Choose own, team or all.")]}
