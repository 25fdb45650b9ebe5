"""Saved views of list pages: a list's filters, sort and page size under a name,
private or shared, and pinned to the owner's menu.

Every list page of a :class:`~trellis.views.TrellisModelView` (core or plugin)
offers them: a *Views* menu above the list with the views saved for it, and
*Save this view*.  A saved view is the list's own query string, kept to the
arguments FAB's list understands (``_flt_*``, ``_oc_*``, ``_od_*``,
``psize_*``), so opening it is opening the list with those arguments — under
the viewer's own permissions and record rules.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import or_, select

from trellis.db import db
from trellis.models import SavedView
from trellis.notification_views import current_user_id as _user_id

RESOURCE = "core.SavedView"
#: The list arguments a saved view keeps (filters, order, page size).
LIST_ARGUMENT = re.compile(r"^(_flt_\d+_[A-Za-z0-9_.]+|_oc_\w+|_od_\w+|psize_\w+)$")


def list_query(query_string: str) -> str:
    """``query_string`` kept to list arguments (anything else is dropped)."""
    pairs = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True)
             if LIST_ARGUMENT.match(k)]
    return urlencode(pairs)[:2000]


def list_views() -> dict[str, Any]:
    """The list views that can be saved: ``{endpoint: view}``."""
    from trellis.views import TrellisModelView

    return {type(v).__name__: v for v in current_app.appbuilder.baseviews
            if isinstance(v, TrellisModelView)}


def visible(view: str | None = None) -> list[SavedView]:
    """Saved views the signed-in user may open (own and shared), for one list or all."""
    stmt = select(SavedView).where(or_(SavedView.owner_id == _user_id(),
                                       SavedView.shared.is_(True)))
    if view is not None:
        stmt = stmt.where(SavedView.view == view)
    return list(db.session.scalars(stmt.order_by(SavedView.name, SavedView.id)))


def url_of(saved: SavedView) -> str:
    view = list_views().get(saved.view)
    if view is None:
        return "#"
    base = url_for(f"{saved.view}.list")
    return f"{base}?{saved.query}" if saved.query else base


class SaveSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    view = fields.String(required=True)
    query = fields.String(load_default="")
    shared = fields.Boolean(load_default=False)
    pinned = fields.Boolean(load_default=False)


class SavedViewsView(BaseView):
    """Save, pin and delete saved views (the forms on every list page)."""

    route_base = "/savedviews"
    default_view = "index"
    class_permission_name = RESOURCE
    method_permission_name = {"index": "read", "save": "write", "pin": "write",
                              "delete": "write"}
    base_permissions = ["can_read", "can_write"]

    @expose("/")
    @has_access
    def index(self):
        """Me > Saved views: every view the user may open, theirs to pin or delete."""
        from trellis.admin import ActionForm

        views = list_views()
        rows = [(s, url_of(s), getattr(views.get(s.view), "list_title", None) or s.view)
                for s in visible()]
        return self.render_template("trellis/saved_views.html", rows=rows, me=_user_id(),
                                    form=ActionForm())

    @expose("/save", methods=["POST"])
    @has_access
    def save(self):
        form = {k: v for k, v in request.form.items() if k != "csrf_token"}
        form["shared"] = form.get("shared") == "y"
        form["pinned"] = form.get("pinned") == "y"
        try:
            data = SaveSchema().load(form)
        except ValidationError as exc:
            flash(_("Saved view not saved: ") + "; ".join(
                f"{field}: {' '.join(map(str, msgs))}" for field, msgs in exc.messages.items()),
                "danger")
            return redirect(request.referrer or url_for("HomeView.index"))
        view = list_views().get(data["view"])
        if view is None or not current_app.appbuilder.sm.has_access(
                "can_read", view.class_permission_name):
            abort(404)
        saved = SavedView(name=data["name"].strip(), view=data["view"],
                          query=list_query(data["query"]), owner_id=_user_id(),
                          shared=data["shared"], pinned=data["pinned"])
        db.session.add(saved)
        db.session.commit()
        flash(_("Saved the view “%(name)s”.", name=saved.name), "success")
        return redirect(url_of(saved))

    @expose("/<int:pk>/pin", methods=["POST"])
    @has_access
    def pin(self, pk: int):
        saved = self._own(pk)
        saved.pinned = not saved.pinned
        db.session.commit()
        return redirect(request.referrer or url_of(saved))

    @expose("/<int:pk>/delete", methods=["POST"])
    @has_access
    def delete(self, pk: int):
        saved = self._own(pk)
        view = saved.view
        db.session.delete(saved)
        db.session.commit()
        flash(_("Deleted the view “%(name)s”.", name=saved.name), "success")
        return redirect(url_for(f"{view}.list") if view in list_views() else
                        url_for("HomeView.index"))

    @staticmethod
    def _own(pk: int) -> SavedView:
        saved = db.session.get(SavedView, pk)
        if saved is None or saved.owner_id != _user_id():
            abort(404)  # someone else's (even shared) is not ours to change
        return saved


def menu_context() -> dict[str, Any]:
    """Template context: the signed-in user's pinned views for the navbar, and a
    helper for list pages."""
    user_id = _user_id()
    if user_id is None or not current_app.appbuilder.sm.has_access("can_read", RESOURCE):
        return {"trellis_pinned_views": [], "trellis_saved_views": None}
    try:
        pinned = [(s.name, url_of(s)) for s in db.session.scalars(
            select(SavedView).where(SavedView.owner_id == user_id, SavedView.pinned.is_(True))
            .order_by(SavedView.name))]
    except Exception:  # noqa: BLE001 - the menu must never break a page
        db.session.rollback()
        pinned = []
    return {"trellis_pinned_views": pinned,
            "trellis_saved_views": lambda view: [(s, url_of(s)) for s in visible(view)],
            "trellis_may_save_views": current_app.appbuilder.sm.has_access(
                "can_write", RESOURCE)}
