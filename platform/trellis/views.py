"""Base class for plugin admin views."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, request
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.urltools import get_order_args, get_page_args, get_page_size_args
from flask_babel import gettext as _
from wtforms import HiddenField

from trellis import rules
from trellis.i18n import lazy, translate

#: FAB ModelView method -> ``read`` / ``write``, matching :data:`trellis.api.API_PERMISSIONS`.
VIEW_PERMISSIONS = {
    "list": "read",
    "show": "read",
    "download": "read",
    "export": "read",
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


class FormRejected(Exception):
    """A model rule refused the form's record; the errors are on the form's fields."""


def _attach_errors(form: Any, messages: Any) -> None:
    """Put each ``{field: [message]}`` under its form field (``stage_id`` under the
    ``stage`` picker); flash what belongs to no field."""
    messages = messages if isinstance(messages, dict) else {"_": messages}
    for name, msgs in messages.items():
        msgs = msgs if isinstance(msgs, list) else [msgs]
        field = form._fields.get(name) or (
            form._fields.get(name[:-3]) if name.endswith("_id") else None)
        head, _, rest = name.partition(".")
        if field is None and rest and head in form._fields:  # steps.1.template_id
            field, msgs = form._fields[head], [f"{rest}: {m}" for m in msgs]
        if field is None:
            flash(f"{name}: {' '.join(map(str, msgs))}", "danger")
        else:
            field.errors = [*field.errors, *map(str, msgs)]


def yes_no(value: Any) -> Any:
    """A boolean as the user's language writes it (``True``/``False`` in English)."""
    if value is True:
        return _("True")
    if value is False:
        return _("False")
    return value


class TrellisModelView(ModelView):
    """A FAB ``ModelView`` sharing ``can_read``/``can_write`` on ``<plugin>.<Model>``
    with the model's REST API.  Use ``datamodel = TrellisSQLAInterface(Model)``.

    Record pages of audited models link to the record's history, and show the
    panels other plugins add to the model (:mod:`trellis.panels`)."""

    method_permission_name = VIEW_PERMISSIONS
    page_size = 25
    #: A stable order for pages (without one PostgreSQL returns rows in scan order,
    #: which can change between two requests for the same page).
    base_order = ("id", "asc")
    #: Most related records a list's filter drop-down offers (:mod:`trellis.fastpaths`).
    search_options_limit = 500
    show_template = "trellis/show.html"
    list_template = "trellis/list.html"
    #: Offer CSV/XLSX export of the (filtered) list (:mod:`trellis.export`).
    exportable = True
    #: Columns holding codes shown translated, with every code they may hold
    #: (``{"status": STATUSES}``): the codes are msgids of the plugin's catalog.
    translated_values: dict[str, Any] = {}
    #: FAB's ``/download/<file>`` serves its UPLOAD_FOLDER for file columns, which
    #: Trellis models do not use (attachments are served by the plugins that keep them).
    exclude_route_methods = {"download"}

    def __init__(self, **kwargs: Any) -> None:
        # Every @action needs can_write on the resource unless the view maps it
        # otherwise (FAB would otherwise create a permission named after the action).
        actions = {name: "write" for name in dir(type(self))
                   if hasattr(getattr(type(self), name, None), "_action")}
        self.method_permission_name = {**actions, **self.method_permission_name}
        model = self.datamodel.obj
        # the version the form was opened at (optimistic locking, trellis.locking)
        if self.edit_columns and "trellis_version" not in self.edit_columns:
            self.edit_form_extra_fields = {**(self.edit_form_extra_fields or {}),
                                           "trellis_version": HiddenField()}
            self.edit_columns = [*self.edit_columns, "trellis_version"]
        self.base_filters = [*(self.base_filters or []), *rules.rule_filters(model)]
        pickers = rules.picker_filters(model)
        self.add_form_query_rel_fields = {**pickers, **(self.add_form_query_rel_fields or {})}
        self.edit_form_query_rel_fields = {**pickers, **(self.edit_form_query_rel_fields or {})}
        self.search_form_query_rel_fields = {**pickers,
                                             **(self.search_form_query_rel_fields or {})}
        super().__init__(**kwargs)

    #: Attributes that custom fields extend (their values without custom fields).
    _CUSTOM_ATTRS = ("list_columns", "add_columns", "edit_columns", "show_columns",
                     "search_columns", "order_columns", "label_columns",
                     "formatters_columns", "add_form", "edit_form", "search_form")

    def apply_custom_fields(self, fields: list[Any]) -> None:
        """Show the model's custom fields (:mod:`trellis.customfields`) in this view's
        list, record page, forms, filters and sort order.  Called per request when
        the definitions changed (:func:`trellis.customfield_views.sync_views`)."""
        from trellis.customfield_views import filter_class, form_field
        from trellis.customfields import OPERATORS, display

        base = self.__dict__.get("_custom_base")
        if base is None:
            base = self._custom_base = {
                "attrs": {name: getattr(self, name, None) for name in self._CUSTOM_ATTRS},
                "search": dict(self._filters._search_filters),
                "all": dict(self._filters._all_filters)}
        attrs = base["attrs"]
        names = [f.name for f in fields]

        def extended(columns: Any) -> Any:
            if not columns:
                return columns
            tail = ["trellis_version"] if columns[-1] == "trellis_version" else []
            head = columns[:-1] if tail else list(columns)
            return [*head, *names, *tail]

        for name in ("list_columns", "add_columns", "edit_columns", "show_columns",
                     "search_columns", "order_columns"):
            setattr(self, name, extended(attrs[name]))
        self.label_columns = {**attrs["label_columns"], **{f.name: f.label for f in fields}}
        self.formatters_columns = {**(attrs["formatters_columns"] or {}), **{
            f.name: (lambda value, f=f: display(f, value)) for f in fields}}
        filters = {f.name: [filter_class(op)(f.name, self.datamodel)
                            for op in OPERATORS[f.type]] for f in fields}
        self._filters._search_filters = {**base["search"], **filters}
        self._filters._all_filters = {**base["all"], **filters}
        for form_name in ("add_form", "edit_form"):
            form = attrs[form_name]
            if form is not None:
                setattr(self, form_name, type(form.__name__, (form,),
                                              {f.name: form_field(f) for f in fields}))
        if attrs["search_form"] is not None:
            from wtforms import StringField

            self.search_form = type(attrs["search_form"].__name__, (attrs["search_form"],),
                                    {f.name: StringField(f.label) for f in fields})

    def _init_forms(self) -> None:
        from trellis.fastpaths import bounded_search_options

        # FAB's generated and the view's own labels, translated when shown (in lists
        # and forms; their msgids are collected from the booted app: trellis.i18n_catalogs)
        self.label_columns = {k: lazy(v) for k, v in self.label_columns.items()}
        self.formatters_columns = {**{c: yes_no for c in self._boolean_columns()},
                                   **{c: translate for c in self.translated_values},
                                   **(self.formatters_columns or {})}
        self.description_columns = {k: lazy(v)
                                    for k, v in (self.description_columns or {}).items()}
        super()._init_forms()
        # filter drop-downs bounded (trellis.fastpaths)
        self.search_form = bounded_search_options(
            self.search_form, self.datamodel, self.search_form_query_rel_fields,
            self.search_options_limit)

    def _boolean_columns(self) -> list[str]:
        """The boolean columns of the list and the record page (shown translated)."""
        found = []
        for name in {*(self.list_columns or ()), *(self.show_columns or ())}:
            try:
                if self.datamodel.is_boolean(name):
                    found.append(name)
            except Exception:  # noqa: BLE001 - not a column (a relation, a property)
                continue
        return found

    def _init_titles(self) -> None:
        super()._init_titles()
        # ``title`` (the tab of a related list on a record page) is FAB's copy of the list's
        for attr in ("list_title", "show_title", "add_title", "edit_title", "title"):
            setattr(self, attr, lazy(getattr(self, attr, None)))

    def pre_add(self, item: Any) -> None:
        rules.default_owner(item)
        self._check_rules(item)

    def prefill_form(self, form: Any, pk: Any) -> None:
        from trellis import locking
        from trellis.db import db

        super().prefill_form(form, pk)
        item = self.datamodel.get(pk, self._base_filters)
        if item is not None and "trellis_version" in form:
            form.trellis_version.data = locking.version(db.session, item)

    def pre_update(self, item: Any) -> None:
        self._check_version(item)
        self._check_rules(item)

    def _check_version(self, item: Any) -> None:
        """Refuse a save based on an outdated copy; show what changed meanwhile
        (compared in :meth:`process_form`, before the form touched the record)."""
        from trellis.db import db

        clash = g.pop("trellis_clash", None)
        if clash is None:
            return
        form = g.get("trellis_form")
        db.session.rollback()
        form.trellis_version.data = clash["current_version"]  # saving again overwrites
        changes = clash["changes"]
        if changes:
            flash(_("This record was changed by %(who)s since you opened it (%(fields)s). "
                    "Review the changes and save again to overwrite them.",
                    who=", ".join(sorted({c["by"] for c in changes})),
                    fields=", ".join(sorted({f for c in changes for f in c["changes"]}))),
                  "warning")
        else:
            flash(_("This record was changed since you opened it. Reload it, or save again "
                    "to overwrite the changes."), "warning")
        for change in changes:
            for field, values in change["changes"].items():
                if isinstance(values, dict) and "old" in values:
                    flash(_("%(who)s changed %(field)s from %(old)r to %(new)r at %(at)s",
                            who=change["by"], field=field, old=values["old"],
                            new=values["new"], at=str(change["at"])[:19]), "info")
        g.trellis_rejected_form = form
        raise FormRejected(_("This record was changed since you opened it."))

    def post_add(self, item: Any) -> None:
        """Warn (with links) when the new record matches existing ones."""
        from trellis.duplicates import flash_duplicates

        flash_duplicates(item)

    def process_form(self, form: Any, is_created: bool) -> None:
        g.trellis_form = form  # FAB's add/edit call this with the posted form
        token = form.trellis_version.data if "trellis_version" in form else None
        pk = (request.view_args or {}).get("pk")
        if not is_created and token and pk is not None:
            from trellis import locking
            from trellis.db import db

            item = self.datamodel.get(pk, self._base_filters)
            if item is not None:  # compared before the form's values reach the record
                g.trellis_clash = locking.conflict(db.session, item, token)
        super().process_form(form, is_created)

    def _check_rules(self, item: Any) -> None:
        """Run the model's rules before FAB saves.  A broken rule saves nothing and
        shows the form again, with the user's input and each message under its field."""
        from trellis.db import db
        from trellis.validation import RecordInvalid

        try:
            with db.session.no_autoflush:
                db.session.add(item)
            db.session.flush()
        except RecordInvalid as exc:
            db.session.rollback()
            form = g.get("trellis_form")
            if form is None:
                raise
            _attach_errors(form, exc.messages)
            g.trellis_rejected_form = form
            raise FormRejected(_("Please correct the errors below.")) from exc

    def _add(self) -> Any:
        widget = super()._add()
        form = g.pop("trellis_rejected_form", None)
        if widget is not None or form is None:
            return widget
        return self._get_add_widget(form=form, exclude_cols=self._filters.get_relation_cols())

    def _edit(self, pk: Any) -> Any:
        widgets = super()._edit(pk)
        form = g.pop("trellis_rejected_form", None)
        if widgets is not None or form is None:
            return widgets
        widgets = self._get_edit_widget(form=form,
                                        exclude_cols=self._filters.get_relation_cols())
        return self._get_related_views_widgets(
            self.datamodel.get(pk, self._base_filters), filters={}, orders=get_order_args(),
            pages=get_page_args(), page_sizes=get_page_size_args(), widgets=widgets)

    @expose("/export/<fmt>")
    @has_access
    def export(self, fmt: str) -> Any:
        """The list as filtered in the query string, as a CSV or XLSX file
        (record rules apply; audited)."""
        from trellis.export import FORMATS, export_view

        if fmt not in FORMATS or not self.exportable:
            abort(404)
        return export_view(self, fmt)

    def _show(self, pk: Any) -> Any:
        """FAB's record page, keeping the record for the plugins' panels."""
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            abort(404)
        g.trellis_show_item = item
        widgets = self._get_show_widget(pk, item)
        self.update_redirect()
        return self._get_related_views_widgets(item, orders=get_order_args(),
                                               pages=get_page_args(),
                                               page_sizes=get_page_size_args(), widgets=widgets)

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
            flash(_("Access is denied."), "danger")
            return redirect(".")
        items = [self.datamodel.get(self._deserialize_pk_if_composite(pk))
                 for pk in request.form.getlist("rowid")]
        return self.actions[name].func([item for item in items if item is not None])

    def render_template(self, template: str, **kwargs: Any) -> Any:
        entry = current_app.extensions["trellis"].registry.for_class(self.datamodel.obj)
        show_history = entry is not None and entry.spec.audited and \
            self.appbuilder.sm.has_access("can_read", "core.Audit")
        kwargs.setdefault("audit_model", entry.name if show_history else None)
        routes = self.include_route_methods
        kwargs.setdefault("exportable", self.exportable and (routes is None or "export" in routes))
        item = g.pop("trellis_show_item", None)
        if entry is not None and item is not None and template == self.show_template:
            for key, value in self.show_context(entry.name, item).items():
                kwargs.setdefault(key, value)
        return super().render_template(template, **kwargs)

    def show_context(self, model: str, item: Any) -> dict[str, Any]:
        """Extra template context of a record page: the plugins' panels.  Override
        (calling ``super()``) to add more, as the customer pages do."""
        from trellis.panels import render

        return {"panels": render(model, item), "record": item}
