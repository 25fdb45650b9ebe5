"""The application factory: Flask + Flask-AppBuilder + every loadable plugin."""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from flask import Flask, jsonify, request
from werkzeug.routing import IntegerConverter
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import BaseApi
from flask_wtf.csrf import CSRFProtect
from flask_login import current_user

import trellis.audit  # noqa: F401 - registers the audit/record-event flush listener
import trellis.validation  # noqa: F401 - registers the model-rules flush listener
from trellis import core_plugin, i18n
from trellis.config import from_environment
from trellis.db import db
from trellis.extension import Trellis
from trellis.headers import security_headers
from trellis.fastpaths import TrellisSecurityManager, cache_rison_validators
from trellis.plugins import CORE, discover
from trellis.rules import SCOPES
from trellis.specs import (ActionSpec, BlueprintSpec, FeatureSpec, JobSpec, ModelSpec,
                           PanelSpec, RoleSpec, ScheduleSpec, ViewSpec, WidgetSpec)
from trellis.dashboard import KINDS

log = logging.getLogger(__name__)


def create_app(
    config: Mapping[str, Any] | None = None,
    plugins: Iterable[str] | None = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    discover_installed: bool = True,
) -> Flask:
    """Build a Trellis app.

    :param config: overrides on top of the environment's configuration.
    :param plugins: load only these installed plugins (default: all, or
        ``TRELLIS_PLUGINS``); their dependencies must be listed too.
    :param extra_plugins: ``(name, module)`` pairs registered as if installed —
        how tests add a throwaway plugin.
    :param discover_installed: ``False`` ignores installed entry points.
    """
    app = Flask("trellis")
    # ids in URLs stay within the database's integer range: larger ones find no route (404)
    app.url_map.converters["int"] = DatabaseIntConverter
    app.config.update(from_environment())
    app.config.update(config or {})
    logging.getLogger("trellis").setLevel(app.config["TRELLIS_LOG_LEVEL"])
    app.json.sort_keys = False

    db.init_app(app)
    ext = Trellis(app)
    found = discover(extra_plugins) if discover_installed else sorted(
        (name, getattr(mod, "__version__", ""), mod) for name, mod in extra_plugins
    )
    only = plugins if plugins is not None else app.config.get("TRELLIS_PLUGINS")
    if only is not None:
        only = set(only) | {name for name, _ in extra_plugins}
    ext.plugins.load(core_plugin, found, only=only)

    cache_rison_validators()
    i18n.configure(app)
    with app.app_context():
        appbuilder = AppBuilder(security_manager_class=TrellisSecurityManager)
        appbuilder.indexview = core_plugin.HomeView
        appbuilder.init_app(app, db.session)
        i18n.init_app(app, appbuilder)
        _openapi(app, appbuilder)
        _limit_api_login(appbuilder)
        _hide_disabled_menus(app)
        for name in list(ext.plugins.order):
            if ext.plugins.by_name[name].ok:  # not taken out with a failed dependency
                _register(ext, appbuilder, name)
        for _ in ext.plugins.call_each("trellis_app_ready", app=app):
            pass  # called for its effect on the app
    _protect_forms(app, appbuilder)
    for plugin, command in ext.cli_commands:
        app.cli.add_command(command)
    if app.config.get("TRELLIS_PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore
    app.before_request(_refuse_oversized)
    app.before_request(_gate)
    security_headers(app)
    app.register_error_handler(404, _api_error)
    app.register_error_handler(405, _api_error)
    return app


# ---------------------------------------------------------------- registration


def _collect(ext: Trellis, name: str) -> dict[str, Any]:
    """Call every registration hook of one plugin and check what it returned.

    Nothing is applied yet, so a plugin that raises here leaves no trace.
    """
    call = lambda hook: ext.plugins.call_one(name, hook) or []  # noqa: E731
    got: dict[str, Any] = {
        "models": list(call("trellis_models")),
        "views": list(call("trellis_views")),
        "apis": list(call("trellis_apis")),
        "blueprints": list(call("trellis_blueprints")),
        "roles": list(call("trellis_roles")),
        "jobs": list(call("trellis_jobs")),
        "schedules": list(call("trellis_schedules")),
        "handlers": list(call("trellis_event_handlers")),
        "widgets": list(call("trellis_dashboard_widgets")),
        "features": list(call("trellis_customer_features")),
        "actions": list(call("trellis_actions")),
        "panels": list(call("trellis_record_panels")),
        "commands": list(call("trellis_cli_commands")),
        "settings": ext.plugins.call_one(name, "trellis_settings_schema"),
        "migrations": ext.plugins.call_one(name, "trellis_migrations"),
    }
    for widget in got["widgets"]:
        if not isinstance(widget, WidgetSpec):
            raise TypeError(f"widgets must be WidgetSpec objects, got {widget!r}")
        if widget.kind not in KINDS:
            raise ValueError(f"widget {widget.name!r}: kind must be one of {', '.join(KINDS)}")
    for role in got["roles"]:
        if isinstance(role, RoleSpec) and role.scope not in (None, *SCOPES):
            raise ValueError(f"role {role.name!r}: scope must be own, team or all")
    kinds = {"models": ModelSpec, "views": ViewSpec, "blueprints": BlueprintSpec,
             "roles": RoleSpec, "jobs": JobSpec, "schedules": ScheduleSpec,
             "features": FeatureSpec, "actions": ActionSpec, "panels": PanelSpec}
    for key, kind in kinds.items():
        for item in got[key]:
            if not isinstance(item, kind):
                raise TypeError(f"{key} must be {kind.__name__} objects, got {item!r}")
    return got


def _register(ext: Trellis, appbuilder: AppBuilder, name: str) -> None:
    plugin = ext.plugins.by_name[name]
    try:
        got = _collect(ext, name)
        for spec in got["models"]:
            ext.registry.register(name, spec)
        for spec in got["jobs"]:
            ext.jobs.add(name, spec)
        for spec in got["features"]:
            _add_unique(ext.features, name, spec, "feature")
        for spec in got["actions"]:
            if spec.name.split(".", 1)[0] != name:
                raise ValueError(f"action {spec.name!r} must be named {name}.<action>")
            _add_unique(ext.actions, name, spec, "action")
        for spec in got["schedules"]:
            ext.jobs.spec(spec.job)  # the scheduled job must exist
            if (spec.interval is None) == (spec.cron is None):
                raise ValueError(f"schedule of {spec.job!r} needs either interval or cron")
            if spec.interval is not None and spec.interval < 1:
                raise ValueError(f"schedule of {spec.job!r}: interval must be >= 1 second")
    except Exception as exc:  # noqa: BLE001 - report, and boot without it
        ext.registry.unregister_plugin(name)
        ext.jobs.remove_plugin(name)
        for table in (ext.features, ext.actions):
            for key in [k for k, (owner, _) in table.items() if owner == name]:
                del table[key]
        ext.plugins.fail(name, f"failed to register: {exc}")
        return
    ext.jobs.schedules.extend((name, s) for s in got["schedules"])
    for handler in got["handlers"]:
        ext.events.add(name, handler)
    ext.roles.extend((name, r) for r in got["roles"])
    ext.widgets.extend((name, w) for w in got["widgets"])
    ext.panels.extend((name, p) for p in got["panels"])
    ext.cli_commands.extend((name, c) for c in got["commands"])
    if got["settings"] is not None:
        ext.settings_schemas[name] = got["settings"]
    if got["migrations"]:
        ext.migrations[name] = str(got["migrations"])

    category = plugin.label if name != CORE else None
    icon = plugin.manifest.icon if plugin.manifest else ""
    resources = ext.resources.setdefault(name, set())

    def menu_cond(plugin_name: str = name) -> bool:
        return ext.is_enabled(plugin_name)

    for spec in got["views"]:
        _name_permissions(name, spec.view)
        resources.add(spec.view.class_permission_name)
        if spec.name:
            view = appbuilder.add_view(
                spec.view, spec.name, label=spec.label or spec.name, icon=spec.icon,
                # category="" puts the entry at the top level of the menu
                category=category if spec.category is None else spec.category,
                category_icon=icon,
                menu_cond=menu_cond,
            )
        else:
            view = appbuilder.add_view_no_menu(spec.view)
        ext.blueprint_owner[view.blueprint.name] = (name, None)
    for api in got["apis"]:
        _name_permissions(name, api)
        resources.add(api.class_permission_name)
        view = appbuilder.add_api(api)
        ext.blueprint_owner[view.blueprint.name] = (name, None)
    for spec in got["blueprints"]:
        ext.app.register_blueprint(spec.blueprint)
        ext.blueprint_owner[spec.blueprint.name] = (name, spec)
        if not spec.public:
            resources.add(f"{name}.{spec.blueprint.name}")


def _add_unique(table: dict[str, tuple[str, Any]], plugin: str, spec: Any, kind: str) -> None:
    """Add a named spec, refusing a name another plugin already uses."""
    if spec.name in table:
        raise ValueError(f"{kind} {spec.name!r} is already offered by plugin "
                         f"{table[spec.name][0]!r}")
    table[spec.name] = (plugin, spec)


def _name_permissions(plugin: str, cls: type) -> None:
    """Prefix a view's or API's permission resource with its plugin's name, so
    the permissions of a plugin can be listed and removed exactly.

    A model view and the model's API share ``<plugin>.<Model>``."""
    prefix = f"{plugin}."
    current = getattr(cls, "class_permission_name", None)
    if current and current.startswith(prefix):
        return
    model = getattr(getattr(cls, "datamodel", None), "obj", None)
    resource = current or (model.__name__ if model else cls.__name__)
    cls.class_permission_name = prefix + resource


# ---------------------------------------------------------------- requests


def _refuse_oversized():
    """413 for a body declared larger than ``MAX_CONTENT_LENGTH``, before any view
    reads it (FAB's REST views would turn werkzeug's 413 into a 500)."""
    from flask import current_app

    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and (request.content_length or 0) > limit:
        message = f"The request body is larger than the limit of {limit:,} bytes."
        if request.path.startswith("/api/"):
            return jsonify(message=message), 413
        return message, 413
    return None


def _gate():
    """404 for a disabled plugin's views; login and permission for plain blueprints."""
    from flask import current_app

    ext: Trellis = current_app.extensions["trellis"]
    owner = ext.blueprint_owner.get(request.blueprint or "")
    if owner is None:
        return None
    plugin, spec = owner
    if not ext.is_enabled(plugin):
        if request.path.startswith("/api/"):
            return jsonify(message="Not found"), 404
        return "Not found", 404
    if spec is None or spec.public:
        return None
    sm = current_app.appbuilder.sm
    if current_app.config.get("FAB_API_KEY_ENABLED"):
        key = sm.extract_api_key_from_request()
        if key is not None and sm.validate_api_key(key) is None:
            return jsonify(message="Not authorized"), 401
    user = getattr(sm, "current_user", None) or current_user
    if not getattr(user, "is_authenticated", False):
        return jsonify(message="Not authorized"), 401
    if not sm.has_access(spec.permission, f"{plugin}.{spec.blueprint.name}"):
        return jsonify(message="Forbidden"), 403
    return None


def _protect_forms(app: Flask, appbuilder: AppBuilder) -> None:
    """CSRF on every form post (FAB's own delete/action forms are unprotected
    without CSRFProtect).  REST APIs are exempt: they authenticate with JWTs or
    API keys, and browser sessions there are covered by SameSite=Lax cookies.
    Public blueprints are exempt too: they use no session."""
    csrf = CSRFProtect(app)
    for view in appbuilder.baseviews:
        if isinstance(view, BaseApi):
            csrf.exempt(view.blueprint)
    # Public blueprints (BlueprintSpec(public=True): tracking beacons, inbound
    # webhooks, forms embedded on other sites) act on no one's session, and the
    # sites posting to them cannot carry our token.
    for owner in app.extensions["trellis"].blueprint_owner.values():
        if owner[1] is not None and owner[1].public:
            csrf.exempt(owner[1].blueprint)


def _hide_disabled_menus(app: Flask) -> None:
    """FAB's server-rendered navbar ignores ``menu_cond``: honour it, and hide a
    category once none of its entries is visible."""
    fab_visible = app.jinja_env.filters["is_menu_visible"]

    def is_menu_visible(item: Any) -> bool:
        if not item.should_render():
            return False
        if item.childs and not any(
                child.name != "-" and is_menu_visible(child) for child in item.childs):
            return False
        return fab_visible(item)

    app.jinja_env.filters["is_menu_visible"] = is_menu_visible


class DatabaseIntConverter(IntegerConverter):
    """Flask's ``<int:...>``, at most the largest 64-bit integer a database column holds."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None,  # noqa: A002
                 max: int | None = 2**63 - 1, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits, min, max, signed)


def _openapi(app: Flask, appbuilder: AppBuilder) -> None:
    """The OpenAPI document (corrected, :mod:`trellis.openapi`) and Swagger UI,
    which FAB would add uncorrected (``FAB_ADD_OPENAPI_VIEWS`` is off)."""
    from flask_appbuilder.api.manager import SwaggerView

    from trellis.openapi import TrellisOpenApi

    if app.config.get("FAB_API_SWAGGER_UI"):
        appbuilder.add_api(TrellisOpenApi)
        appbuilder.add_view_no_menu(SwaggerView)


def _limit_api_login(appbuilder: AppBuilder) -> None:
    """FAB rate-limits only the login form; give the JWT login API the same limit."""
    sm = appbuilder.sm
    if not sm.is_auth_limited:
        return
    for view in appbuilder.baseviews:
        if isinstance(view, sm.security_api):
            sm.limiter.limit(sm.auth_rate_limit, methods=["POST"])(view.blueprint)


def _api_error(error: Any) -> Any:
    """A URL under ``/api/`` that matches no route answers JSON like the APIs do."""
    if request.path.startswith("/api/"):
        code = getattr(error, "code", 404)
        return jsonify(message="Not found" if code == 404 else "Method not allowed"), code
    return error


