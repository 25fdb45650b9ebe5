"""Base class for plugin admin views."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request
from flask_appbuilder import ModelView, expose

from trellis import rules

#: FAB ModelView method -> ``read`` / ``write``, matching :data:`trellis.api.API_PERMISSIONS`.
VIEW_PERMISSIONS = {
    "list": "read",
    "show": "read",
    "download": "read",
    "api": "read",
    "api_read": "read",
    "api_get": "read",
    "api_readvalues": "read",
    "api_column_add": "write",
    "api_column_edit": "write",
    "add": "write",
    "edit": "write",
    "delete": "write",
    "action": "write",
    "action_post": "write",
    "api_create": "write",
    "api_update": "write",
    "api_delete": "write",
}


class TrellisModelView(ModelView):
    """A FAB ``ModelView`` sharing ``can_read``/``can_write`` on ``<plugin>.<Model>``
    with the model's REST API.  Use ``datamodel = TrellisSQLAInterface(Model)``.

    Record pages of audited models link to the record's history."""

    method_permission_name = VIEW_PERMISSIONS
    page_size = 25
    show_template = "trellis/show.html"

    def __init__(self, **kwargs: Any) -> None:
        model = self.datamodel.obj
        self.base_filters = [*(self.base_filters or []), *rules.rule_filters(model)]
        pickers = rules.picker_filters(model)
        self.add_form_query_rel_fields = {**pickers, **(self.add_form_query_rel_fields or {})}
        self.edit_form_query_rel_fields = {**pickers, **(self.edit_form_query_rel_fields or {})}
        self.search_form_query_rel_fields = {**pickers,
                                             **(self.search_form_query_rel_fields or {})}
        super().__init__(**kwargs)

    def pre_add(self, item: Any) -> None:
        rules.default_owner(item)
        self._check_rules(item)

    def pre_update(self, item: Any) -> None:
        self._check_rules(item)

    def _check_rules(self, item: Any) -> None:
        """Run the model's rules before FAB saves, so a broken rule is shown once,
        as FAB shows any ``pre_add``/``pre_update`` error, and nothing is saved."""
        from trellis.db import db
        from trellis.validation import RecordInvalid

        try:
            with db.session.no_autoflush:
                db.session.add(item)
            db.session.flush()
        except RecordInvalid:
            db.session.rollback()
            raise

    def get_action_permission_name(self, name: str) -> str:
        """An action needs ``can_write`` on the resource unless mapped otherwise."""
        method = self.actions[name].func.__name__
        return "can_" + self.method_permission_name.get(method, "write")

    @expose("/action_post", methods=["POST"])
    def action_post(self) -> Any:
        """FAB's bulk action, minus the records the user's rule hides."""
        name = request.form.get("action", "")
        if name not in self.actions:
            abort(404)
        if not self.appbuilder.sm.has_access(self.get_action_permission_name(name),
                                             self.class_permission_name):
            flash("Access is denied.", "danger")
            return redirect(".")
        items = [self.datamodel.get(self._deserialize_pk_if_composite(pk))
                 for pk in request.form.getlist("rowid")]
        return self.actions[name].func([item for item in items if item is not None])

    def render_template(self, template: str, **kwargs: Any) -> Any:
        entry = current_app.extensions["trellis"].registry.for_class(self.datamodel.obj)
        show_history = entry is not None and entry.spec.audited and \
            self.appbuilder.sm.has_access("can_read", "core.Audit")
        kwargs.setdefault("audit_model", entry.name if show_history else None)
        return super().render_template(template, **kwargs)
