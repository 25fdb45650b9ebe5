"""Dashboards: the widgets of every enabled plugin, arranged per user.

Plugins offer widgets with ``trellis_dashboard_widgets``
(:class:`~trellis.specs.WidgetSpec`); saved reports of the report builder
(:mod:`trellis.reportbuilder`) can be widgets too.  A user sees the widgets
they may read (the widget's ``permission``, the report's model), arranged:

* by default, per role: every widget whose ``roles`` names one of the user's
  roles, or names none; users with a role listed in the core setting
  ``dashboard_full_roles`` (``Manager`` by default) and admins get *every*
  widget they may read;
* or as the user chose (``trellis_dashboard_layout``: which widgets, in which
  order), until they reset it to their roles' default.

Each widget's data is computed inside the request, so every ``restrict()``-ed
query follows the viewer's record rules, and cached per user and widget for
``TRELLIS_DASHBOARD_CACHE_TTL`` seconds (Flask-Caching: Redis when
``TRELLIS_REDIS_URL`` is set, in-process otherwise); ``refresh`` recomputes.
A widget that raises is shown with an error, the rest of the page still works.

What ``data()`` returns, by ``kind`` (every kind may add ``note``, ``unit`` and
``unconverted``: ``[{"currency": "USD", "amount": "500.00"}]``, amounts that had
no exchange rate):

* ``kpi``: ``{"value": "1,234.00", "unit": "EUR", "number": 1234.0, "previous":
  1000.0, "previous_label": "last quarter", "better": "up"}`` — ``value`` is shown;
  with ``number`` and ``previous`` the core adds ``trend`` (direction, change in
  % and whether that is good; ``better="down"`` for figures that should fall).
* ``series``: ``{"labels": ["2024-01", ...], "series": [{"label": "Won",
  "values": [1.0, ...]}, ...], "x_label": "Month", "y_label": "EUR"}`` — lines.
* ``bars``: the same as ``series`` (grouped bars), or one series as
  ``{"bars": [{"label": "Proposal", "value": 3700.0, "display": "3,700.00"}]}``.
* ``pie``: ``{"slices": [{"label", "value", "display"}, ...]}``.
* ``funnel``: ``{"steps": [{"label", "value", "display"}, ...]}`` in funnel order;
  each step shows its share of the first.
* ``table``: ``{"columns": ["Rep", "Won"], "rows": [["ann", "100.00"], ...]}``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

from flask import abort, current_app, g, request
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import func, or_, select

from trellis.db import db
from trellis.i18n import current_locale, format_number, translate
from trellis.extension import current_trellis

log = logging.getLogger(__name__)

RESOURCE = "core.Dashboard"
KINDS = ("kpi", "series", "bars", "pie", "funnel", "table")
REPORT_PREFIX = "core.report_"
MAX_WIDGETS = 40
#: The core's own widgets are on the default dashboards of the core's roles (and,
#: like every widget, of the full-dashboard roles).
GENERAL_ROLES = ("CRM User", "CRM Viewer")


def _user() -> Any:
    user = getattr(g, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


# ------------------------------------------------------------------ which widgets


class Widget:
    """A widget as one user sees it: a plugin's ``WidgetSpec`` or a saved report."""

    def __init__(self, name: str, plugin: str, label: str, kind: str, compute: Any,
                 roles: Iterable[str] = (), order: int = 100, description: str = "") -> None:
        self.name, self.plugin, self.label, self.kind = name, plugin, label, kind
        self.compute, self.roles, self.order = compute, tuple(roles), order
        self.description = description

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "plugin": self.plugin, "label": self.label,
                "kind": self.kind, "description": self.description}


def visible_widgets() -> list[tuple[str, Any]]:
    """``(plugin, WidgetSpec)`` of enabled plugins whose permission the user has."""
    ext = current_trellis()
    sm = current_app.appbuilder.sm
    out = []
    for plugin, spec in ext.widgets:
        if not ext.is_enabled(plugin):
            continue
        permission = getattr(spec, "permission", None)
        if permission is not None and not sm.has_access(*permission):
            continue
        out.append((plugin, spec))
    return out


def _report_widgets() -> list[Widget]:
    """The saved reports the user may use (their own and shared ones, on models
    they may read), as widgets."""
    from trellis import reportbuilder
    from trellis.models import SavedReport

    user = _user()
    if user is None or not current_app.appbuilder.sm.has_access("can_read",
                                                                reportbuilder_resource()):
        return []
    models = {e.name for e in reportbuilder.readable_models()}
    reports = db.session.scalars(select(SavedReport).where(
        or_(SavedReport.owner_id == user.id, SavedReport.shared.is_(True)))
        .order_by(SavedReport.name, SavedReport.id)).all()
    out = []
    for report in reports:
        if report.definition.get("model") not in models:
            continue
        chart = report.definition.get("chart", "bars")
        kind = chart if chart in KINDS else "table"
        if not report.definition.get("group_by") and chart != "table":
            kind = "kpi"
        out.append(Widget(f"{REPORT_PREFIX}{report.id}", "core", report.name, kind,
                          _report_compute(report.id), order=1000,
                          description="Saved report" + (" (shared)" if report.shared else "")))
    return out


def reportbuilder_resource() -> str:
    from trellis.reportviews import RESOURCE as REPORTS

    return REPORTS


def _report_compute(report_id: int) -> Any:
    def compute() -> dict[str, Any]:
        from trellis import reportbuilder
        from trellis.models import SavedReport

        report = db.session.get(SavedReport, report_id)
        definition = reportbuilder.validate(dict(report.definition))
        result = reportbuilder.run(definition)
        return reportbuilder.widget_data(result, definition.definition["chart"])[1]

    return compute


def available() -> list[Widget]:
    """Every widget the current user may put on their dashboard."""
    out = [Widget(f"{plugin}.{spec.name}", plugin, spec.label, spec.kind, spec.data,
                  getattr(spec, "roles", ()), getattr(spec, "order", 100),
                  getattr(spec, "description", ""))
           for plugin, spec in visible_widgets()]
    return out + _report_widgets()


def full_roles() -> set[str]:
    """Roles whose default dashboard is every widget they may read."""
    from trellis.settings import get_settings

    value = get_settings("core").get("dashboard_full_roles", "Manager")
    return {current_app.config.get("AUTH_ROLE_ADMIN", "Admin"),
            *(r.strip() for r in value.split(",") if r.strip())}


def default_names(widgets: list[Widget], role_names: Iterable[str]) -> list[str]:
    """The default dashboard of a user with these roles."""
    roles = set(role_names)
    everything = bool(roles & full_roles())
    chosen = [w for w in widgets if not w.name.startswith(REPORT_PREFIX)
              and (everything or not w.roles or roles & set(w.roles))]
    return [w.name for w in sorted(chosen, key=lambda w: w.order)]  # stable: plugin order


def _stored_layout(user_id: int) -> list[str] | None:
    from trellis.models import DashboardLayout

    row = db.session.get(DashboardLayout, user_id)
    return None if row is None else list(row.widgets or [])


def layout() -> dict[str, Any]:
    """The user's arrangement: ``{"widgets": [names], "custom": bool, "available": [...]}``.

    Stored names that are no longer available (a disabled plugin, a lost
    permission, a deleted report) are left out, not forgotten: they come back
    with the plugin.
    """
    user = _user()
    widgets = available()
    names = {w.name for w in widgets}
    stored = _stored_layout(user.id) if user is not None else None
    if stored is None:
        chosen = default_names(widgets, [r.name for r in getattr(user, "roles", [])])
    else:
        chosen = [n for n in stored if n in names]
    return {"widgets": chosen, "custom": stored is not None,
            "available": [w.describe() for w in widgets]}


def save_layout(names: Any) -> list[str]:
    """Store the user's arrangement; ``ValidationError`` names a bad widget."""
    from trellis.models import DashboardLayout

    loaded = LayoutSchema().load({"widgets": names})["widgets"]
    known = {w.name for w in available()}
    errors = [f"Unknown widget {n!r}." for n in loaded if n not in known]
    if len(set(loaded)) != len(loaded):
        errors.append("Each widget may appear only once.")
    if errors:
        raise ValidationError({"widgets": errors})
    user = _user()
    row = db.session.get(DashboardLayout, user.id) or DashboardLayout(user_id=user.id)
    row.widgets = loaded
    db.session.add(row)
    db.session.commit()
    return loaded


def reset_layout() -> None:
    from trellis.models import DashboardLayout

    row = db.session.get(DashboardLayout, _user().id)
    if row is not None:
        db.session.delete(row)
        db.session.commit()


class LayoutSchema(Schema):
    widgets = fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                          required=True, validate=validate.Length(max=MAX_WIDGETS))


# ------------------------------------------------------------------ computing


def cache() -> Any:
    """This app's widget cache (Flask-Caching): Redis if configured, else in-process."""
    ext = current_app.extensions
    if "trellis_cache" not in ext:
        from flask_caching import Cache

        config = current_app.config
        settings = {"CACHE_DEFAULT_TIMEOUT": int(config["TRELLIS_DASHBOARD_CACHE_TTL"]),
                    "CACHE_KEY_PREFIX": f"{config['TRELLIS_QUEUE_PREFIX']}dash:"}
        if config.get("TRELLIS_REDIS_URL"):
            settings.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=config["TRELLIS_REDIS_URL"])
        else:
            settings.update(CACHE_TYPE="SimpleCache", CACHE_THRESHOLD=5000)
        ext["trellis_cache"] = Cache(current_app, config=settings)
    return ext["trellis_cache"]


def _trend(data: dict[str, Any]) -> None:
    """Add ``trend`` to a KPI that gives ``number`` and ``previous``."""
    number, previous = data.get("number"), data.get("previous")
    if not isinstance(number, (int, float)) or not isinstance(previous, (int, float)):
        return
    change = number - previous
    direction = "up" if change > 0 else "down" if change < 0 else "flat"
    better = data.get("better", "up")
    data["trend"] = {
        "direction": direction,
        "change": round(change, 4),
        "change_pct": round(100.0 * change / abs(previous), 1) if previous else None,
        "good": None if direction == "flat" else direction == better,
        "previous_label": data.get("previous_label") or gettext("previous period"),
    }


def _compute(widget: Widget) -> dict[str, Any]:
    item: dict[str, Any] = {**widget.describe(), "computed_at": time.time()}
    try:
        data = widget.compute()
        if widget.kind == "kpi" and isinstance(data, dict):
            _trend(data)
        item["data"] = data
    except Exception:  # noqa: BLE001 - one broken widget must not hide the others
        log.exception("dashboard widget %s failed", widget.name)
        db.session.rollback()
        item["data"] = None
        item["error"] = gettext("This widget could not be computed.")
    return item


def compute(widget: Widget, refresh: bool = False) -> dict[str, Any]:
    """The widget with its data for the current user, from the cache unless
    ``refresh`` (failures are not cached)."""
    user = _user()
    ttl = int(current_app.config["TRELLIS_DASHBOARD_CACHE_TTL"])
    key = f"{user.id if user else 0}:{current_locale()}:{widget.name}"  # labels are translated
    if ttl > 0 and not refresh:
        try:
            hit = cache().get(key)
        except Exception:  # noqa: BLE001 - a cache outage only costs speed
            log.warning("dashboard cache unavailable", exc_info=True)
            hit = None
        if hit is not None:
            return {**hit, "cached": True}
    item = _compute(widget)
    if ttl > 0 and "error" not in item:
        try:
            cache().set(key, item, timeout=ttl)
        except Exception:  # noqa: BLE001
            log.warning("dashboard cache unavailable", exc_info=True)
    return {**item, "cached": False}


def collect(refresh: bool = False, everything: bool = False) -> list[dict[str, Any]]:
    """The user's dashboard (or every widget they may use) with data."""
    widgets = {w.name: w for w in available()}
    names = [w.name for w in sorted(widgets.values(), key=lambda w: w.order)] if everything \
        else layout()["widgets"]
    return [compute(widgets[n], refresh) for n in names if n in widgets]


def one(name: str, refresh: bool = False) -> dict[str, Any] | None:
    widget = next((w for w in available() if w.name == name), None)
    return None if widget is None else compute(widget, refresh)


def _bar_width(bar: dict[str, Any], bars: list[dict[str, Any]]) -> float:
    top = max((abs(float(b.get("value") or 0)) for b in bars), default=0.0)
    return round(100.0 * abs(float(bar.get("value") or 0)) / top, 1) if top else 0.0


def _refresh_arg() -> bool:
    return request.args.get("refresh", "").lower() in ("1", "true", "yes")


# ------------------------------------------------------------------ core widgets


def _since(days: int) -> Any:
    from trellis.db import utcnow
    from datetime import timedelta

    return utcnow() - timedelta(days=days)


def new_contacts_by_month() -> dict[str, Any]:
    """Contacts created per month over the last 12 months (those the user may see)."""
    from trellis.models import Contact
    from trellis.rules import restrict
    from trellis.sqlfuncs import date_bucket

    month = date_bucket(Contact.created_on, "month").label("month")
    rows = db.session.execute(restrict(
        select(month, func.count()).where(Contact.created_on >= _since(365)), Contact)
        .group_by(month).order_by(month)).all()
    return {"labels": [m for m, _ in rows],
            "series": [{"label": gettext("New contacts"), "values": [n for _, n in rows]}],
            "x_label": gettext("Month created"), "y_label": gettext("Contacts")}


def activities_by_plugin() -> dict[str, Any]:
    """Timeline entries of the last 30 days by the plugin that wrote them, on
    customers the user may see."""
    from trellis.models import Activity, Contact
    from trellis.rules import restrict, visible_ids

    stmt = select(Activity.plugin, func.count()).where(Activity.occurred_at >= _since(30))
    visible = visible_ids(Contact)
    if visible is not None:
        stmt = stmt.where(Activity.contact_id.in_(visible))
    rows = db.session.execute(restrict(stmt, Activity).group_by(Activity.plugin)
                              .order_by(func.count().desc())).all()
    labels = {p.name: translate(p.label) for p in current_trellis().plugins.loaded()}
    return {"slices": [{"label": labels.get(p, p), "value": n, "display": format_number(n)}
                       for p, n in rows], "unit": gettext("Activities, last 30 days")}


def core_widgets() -> list[Any]:
    from trellis.specs import WidgetSpec

    return [
        WidgetSpec("new_contacts", "New contacts per month", new_contacts_by_month,
                   kind="series", order=900, roles=GENERAL_ROLES,
                   description="Contacts created in each of the last 12 months."),
        WidgetSpec("activity_mix", "Customer activity by plugin (30 days)",
                   activities_by_plugin, kind="pie", order=910, roles=GENERAL_ROLES,
                   description="Timeline entries of the last 30 days, by plugin."),
    ]


# ------------------------------------------------------------------ web


class DashboardView(BaseView):
    """``/dashboard/``: the user's widgets; ``/dashboard/widget/<name>`` one box."""

    route_base = "/dashboard"
    default_view = "index"
    class_permission_name = RESOURCE
    method_permission_name = {"index": "read", "widget": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        current = layout()
        return self.render_template("trellis/dashboard.html",
                                    widgets=collect(refresh=_refresh_arg()),
                                    layout=current, bar_width=_bar_width)

    @expose("/widget/<path:name>")
    @has_access
    def widget(self, name: str) -> Any:
        item = one(name, refresh=_refresh_arg())
        if item is None:
            abort(404)
        return self.render_template("trellis/dashboard_widget.html", w=item,
                                    bar_width=_bar_width)


class DashboardApi(BaseApi):
    """``/api/v1/dashboard/``: the user's widgets, their data and arrangement."""

    resource_name = "dashboard"
    class_permission_name = RESOURCE
    method_permission_name = {"widgets": "read", "widget": "read", "get_layout": "read",
                              "put_layout": "read", "delete_layout": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Dashboard"

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("widgets")
    def widgets(self) -> Any:
        """The user's dashboard: its widgets with their data.
        ---
        get:
          parameters:
          - {in: query, name: refresh, schema: {type: boolean},
             description: "recompute instead of using the cache"}
          - {in: query, name: all, schema: {type: boolean},
             description: "every widget the user may use, not only their arrangement"}
          responses:
            200:
              description: "result: [{name, plugin, label, kind, data, computed_at, cached}]"
            401:
              $ref: '#/components/responses/401'
        """
        everything = request.args.get("all", "").lower() in ("1", "true", "yes")
        return self.response(200, result=collect(refresh=_refresh_arg(), everything=everything))

    @expose("/widget/<path:name>", methods=["GET"])
    @protect()
    @safe
    @permission_name("widget")
    def widget(self, name: str) -> Any:
        """One widget with its data (``refresh`` recomputes it).
        ---
        get:
          parameters:
          - {in: path, name: name, required: true, schema: {type: string}}
          - {in: query, name: refresh, schema: {type: boolean}}
          responses:
            200: {description: "result: {name, plugin, label, kind, data, computed_at, cached}"}
            404: {$ref: '#/components/responses/404'}
        """
        item = one(name, refresh=_refresh_arg())
        if item is None:
            return self.response_404()
        return self.response(200, result=item)

    @expose("/layout", methods=["GET"])
    @protect()
    @safe
    @permission_name("get_layout")
    def get_layout(self) -> Any:
        """The user's arrangement and the widgets they may choose from.
        ---
        get:
          responses:
            200: {description: "result: {widgets: [names], custom, available: [...]}"}
        """
        return self.response(200, result=layout())

    @expose("/layout", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put_layout")
    def put_layout(self) -> Any:
        """Choose and order the user's widgets: ``{"widgets": [names]}``.
        ---
        put:
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {widgets: {type: array,
                         items: {type: string}}}}
          responses:
            200: {description: "result: the stored arrangement"}
            400: {$ref: '#/components/responses/400'}
        """
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message={"widgets": ["Send {\"widgets\": [...]}."]})
        try:
            save_layout(body.get("widgets"))
        except ValidationError as exc:
            return self.response_400(message=exc.messages)
        return self.response(200, result=layout())

    @expose("/layout", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("delete_layout")
    def delete_layout(self) -> Any:
        """Forget the user's arrangement: back to their roles' default dashboard.
        ---
        delete:
          responses:
            200: {description: "result: the default arrangement"}
        """
        reset_layout()
        return self.response(200, result=layout())
