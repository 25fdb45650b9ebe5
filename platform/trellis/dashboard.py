"""The dashboard: the widgets of every enabled plugin that the user may read.

Plugins offer widgets with ``trellis_dashboard_widgets`` (:class:`~trellis.specs.WidgetSpec`).
``/dashboard/`` renders them (plain HTML/CSS bars, no JavaScript) and
``GET /api/v1/dashboard/`` returns the same data as JSON.  Widget data is
computed inside the request, so every ``restrict()``-ed query in it follows
the user's record rules.

What ``data()`` returns, by ``kind``:

* ``kpi``:   ``{"value": "1,234.00", "unit": "EUR", "note": "…"}`` (``unit`` and ``note`` optional)
* ``table``: ``{"columns": ["Rep", "Won"], "rows": [["ann", "100.00"], ...]}``
* ``bars``:  ``{"bars": [{"label": "Proposal", "value": 3700.0, "display": "3,700.00"}, ...],
  "unit": "EUR"}``: one horizontal bar per item, scaled to the largest ``value``.

Any of them may add ``"unconverted": [{"currency": "USD", "amount": "500.00"}, ...]``
(amounts that had no exchange rate), shown under the widget.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect

from trellis.extension import current_trellis

log = logging.getLogger(__name__)

RESOURCE = "core.Dashboard"


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


def collect() -> list[dict[str, Any]]:
    """Every visible widget with its data, computed for the current user.

    A widget whose ``data()`` raises is reported with ``"error"`` (and logged)
    instead of taking the whole dashboard down.
    """
    from trellis.db import db

    widgets = []
    for plugin, spec in visible_widgets():
        item: dict[str, Any] = {"name": f"{plugin}.{spec.name}", "plugin": plugin,
                                "label": spec.label, "kind": spec.kind}
        try:
            item["data"] = spec.data()
        except Exception:  # noqa: BLE001 - one broken widget must not hide the others
            log.exception("dashboard widget %s.%s failed", plugin, spec.name)
            db.session.rollback()
            item["data"] = None
            item["error"] = "This widget could not be computed."
        widgets.append(item)
    return widgets


def _bar_width(bar: dict[str, Any], bars: list[dict[str, Any]]) -> float:
    top = max((abs(float(b.get("value") or 0)) for b in bars), default=0.0)
    return round(100.0 * abs(float(bar.get("value") or 0)) / top, 1) if top else 0.0


class DashboardView(BaseView):
    """``/dashboard/``: KPI numbers, tables and bars of the visible widgets."""

    route_base = "/dashboard"
    default_view = "index"
    class_permission_name = RESOURCE
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        return self.render_template("trellis/dashboard.html", widgets=collect(),
                                    bar_width=_bar_width)


class DashboardApi(BaseApi):
    """``GET /api/v1/dashboard/``: the dashboard's widgets and their data."""

    resource_name = "dashboard"
    class_permission_name = RESOURCE
    method_permission_name = {"widgets": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Dashboard"

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("widgets")
    def widgets(self) -> Any:
        """The widgets of enabled plugins the user may read, with their data.
        ---
        get:
          responses:
            200:
              description: "result: [{name, plugin, label, kind, data}]"
            401:
              $ref: '#/components/responses/401'
        """
        return self.response(200, result=collect())
