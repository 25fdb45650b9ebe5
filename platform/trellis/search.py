"""Search across every registered model's ``searchable`` fields.

A model is searched only when its plugin is enabled, it has a list view, and
the user may read that view; its rows pass through the user's record rule, so
search never shows what the list would hide.  ``/search/?q=`` is the page,
``/api/v1/search/?q=`` the API; both need ``can_read`` on ``core.Search``.

Ranking: each row scores by its best field — equal to the query (3), starting
with it (2), containing it (1), ignoring case — and rows come best first, then
newest; groups come in the order of their best row.  The matching sits behind
:func:`matcher` (``condition, score``), the one place a full-text index
(SQLite FTS5, PostgreSQL ``tsvector``) would plug in.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.security.decorators import permission_name, protect
from sqlalchemy import case, func, literal, or_, select

from trellis.db import db
from trellis.extension import current_trellis
from trellis.rules import restrict

MIN_LENGTH, MAX_LENGTH, PER_MODEL = 2, 100, 10


def _views_by_model() -> dict[type, ModelView]:
    views: dict[type, ModelView] = {}
    for view in current_app.appbuilder.baseviews:
        if isinstance(view, ModelView):
            views.setdefault(view.datamodel.obj, view)
    return views


def matcher(model: type, fields: tuple[str, ...], q: str) -> tuple[Any, Any]:
    """``(condition, score)`` for rows of ``model`` matching ``q`` in ``fields``:
    score 3 for a field equal to ``q``, 2 for one starting with it, 1 for one
    containing it (ignoring case; the best field counts)."""
    q = q.strip()
    columns = [getattr(model, name) for name in fields]
    contains = [c.icontains(q, autoescape=True) for c in columns]  # % and _ are literal
    equal = [func.lower(c) == q.lower() for c in columns]
    prefix = [c.istartswith(q, autoescape=True) for c in columns]
    score = case((or_(*equal), 3), (or_(*prefix), 2), else_=literal(1))
    conditions = contains
    return or_(*conditions), score


def validate_query(q: str | None) -> dict[str, list[str]]:
    q = (q or "").strip()
    if len(q) < MIN_LENGTH:
        return {"q": [f"Type at least {MIN_LENGTH} characters."]}
    if len(q) > MAX_LENGTH:
        return {"q": [f"Use at most {MAX_LENGTH} characters."]}
    return {}


def search(q: str, per_model: int = PER_MODEL) -> list[dict[str, Any]]:
    """Matching records the current user may see, grouped by model in registry order."""
    ext, sm = current_trellis(), current_app.appbuilder.sm
    views, groups = _views_by_model(), []
    for entry in ext.registry:
        view = views.get(entry.model)
        if not entry.searchable or view is None or not ext.is_enabled(entry.plugin):
            continue
        if not sm.has_access("can_read", view.class_permission_name):
            continue
        model = entry.model
        key = model.__mapper__.primary_key[0]
        condition, score = matcher(model, entry.searchable, q)
        stmt = select(model, score.label("score")).where(condition)
        rows = db.session.execute(restrict(stmt, model).order_by(score.desc(), key.desc())
                                  .limit(per_model)).all()
        if rows:
            groups.append({"model": entry.name, "label": entry.label,
                           "score": max(int(r.score) for r in rows), "results": [
                {"id": getattr(row, key.key), "title": str(row), "score": int(rank),
                 "url": url_for(f"{view.endpoint}.show", pk=getattr(row, key.key))}
                for row, rank in rows]})
    return sorted(groups, key=lambda g: -g["score"])  # stable: registry order on ties


class SearchView(BaseView):
    route_base = "/search"
    default_view = "index"
    class_permission_name = "core.Search"
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        q = request.args.get("q", "")
        errors = validate_query(q) if q else {}
        groups = search(q) if q and not errors else []
        return self.render_template("trellis/search.html", q=q, errors=errors, groups=groups)


class SearchApi(BaseApi):
    resource_name = "search"
    class_permission_name = "core.Search"
    method_permission_name = {"get": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Search"

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self) -> Any:
        """Records matching ``q`` in every model the user may read.
        ---
        get:
          parameters:
          - {in: query, name: q, required: true, schema: {type: string, minLength: 2}}
          responses:
            200: {description: "Groups of {model, label, results: [{id, title, url}]}"}
            400: {$ref: '#/components/responses/400'}
        """
        q = request.args.get("q", "")
        errors = validate_query(q)
        if errors:
            return self.response_400(message=errors)
        return self.response(200, result=search(q))
