"""A plugin's overview page and status API, for plugins that have no pages yet.

The capability plugins start as skeletons that use these; a plugin replaces
them with its real views as its features land.
"""

from __future__ import annotations

from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect

from trellis.extension import current_trellis
from trellis.settings import get_settings


def _status(plugin: str) -> dict:
    ext = current_trellis()
    info = ext.plugins.by_name[plugin].as_dict()
    info["enabled"] = ext.is_enabled(plugin)
    info["models"] = [m.name for m in ext.registry.for_plugin(plugin)]
    if plugin in ext.settings_schemas:
        info["settings"] = ext.settings_schemas[plugin]().dump(get_settings(plugin))
    return info


def overview_view(plugin: str) -> type[BaseView]:
    """A ``/<plugin>/`` page describing the plugin and its settings."""

    def index(self):
        return self.render_template("trellis/overview.html", info=_status(plugin))

    index = expose("/")(has_access(index))
    return type(f"{plugin.title()}OverviewView", (BaseView,), {
        "route_base": f"/{plugin}",
        "default_view": "index",
        "class_permission_name": f"{plugin}.Overview",
        "method_permission_name": {"index": "read"},
        "index": index,
    })


def overview_api(plugin: str) -> type[BaseApi]:
    """``GET /api/v1/<plugin>/status``: the plugin's version, models and settings."""

    def status(self):
        """The plugin's status.
        ---
        get:
          responses:
            200:
              description: version, models and settings
            401:
              $ref: '#/components/responses/401'
        """
        return self.response(200, result=_status(plugin))

    status = expose("/status", methods=["GET"])(protect()(safe(permission_name("status")(status))))
    return type(f"{plugin.title()}StatusApi", (BaseApi,), {
        "resource_name": plugin,
        "class_permission_name": f"{plugin}.Overview",
        "method_permission_name": {"status": "read"},
        "allow_browser_login": True,
        "openapi_spec_tag": plugin.title(),
        "status": status,
    })
