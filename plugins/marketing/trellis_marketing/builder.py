"""``/marketing/segments/builder``: the segment rule builder (served JS, no CDN).

The page only reads; the browser calls the segment REST API with the session
cookie: ``GET /api/v1/segment/_condition_types`` (what to offer),
``POST /api/v1/segment/_preview`` (count and first rows) and ``POST
/api/v1/segment/`` (save), so every check is the API's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_appbuilder import BaseView, expose, has_access

from trellis import conditions

HERE = Path(__file__).resolve().parent


class SegmentBuilderView(BaseView):
    route_base = "/marketing/segments/builder"
    default_view = "index"
    template_folder = str(HERE / "templates")
    class_permission_name = "Segment"
    method_permission_name = {"index": "read"}
    base_permissions = ["can_read", "can_write"]

    def create_blueprint(self, appbuilder: Any, endpoint: str | None = None,
                         static_folder: str | None = None) -> Any:
        return super().create_blueprint(appbuilder, endpoint,
                                        static_folder or str(HERE / "static"))

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("marketing/builder.html",
                                    condition_labels=conditions.builder_labels())
