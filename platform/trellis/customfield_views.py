"""Custom fields on the web: *Admin > Custom fields*, its REST API
(``/api/v1/custom_field/``), and what every list, form and filter of a
registered model gets from them (FAB filters, form fields, OpenAPI schemas).

Definitions are managed here and stored by :mod:`trellis.customfields`; every
create, rename and removal is written to the audit log (model
``custom_field``).  Removing a field deletes its values, so it asks first: the
page shows how many values would go, the API wants ``?confirm=<key>``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.models.sqla.filters import BaseFilter
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import delete, func, select
from wtforms import (BooleanField, DateField, DecimalField, IntegerField, SelectField,
                     SelectMultipleField, StringField)
from wtforms import ValidationError as FormError
from wtforms.validators import InputRequired, Optional

from trellis import audit, customfields
from trellis.customfields import OPERATOR_LABELS, OPERATORS, PREFIX, TYPES, FieldDef
from trellis.db import db
from trellis.models import CustomField, CustomValue

RESOURCE = "core.CustomField"
AUDIT_MODEL = "custom_field"
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: The largest range bound a value column holds (``Numeric(24, 6)``).
LIMIT = Decimal(10) ** 17


# ------------------------------------------------------------------ lists & filters


class CustomFieldFilter(BaseFilter):
    """A FAB filter on a custom field (``column_name`` is ``cf_<key>``)."""

    op = "eq"
    arg_name = None  # not offered to FAB's own REST filters (the API maps them itself)

    def apply(self, query: Any, value: Any) -> Any:
        name = customfields.model_name(self.model)
        defn = customfields.field(name, self.column_name) if name else None
        if defn is None:
            return query.filter(customfields.never())
        try:
            customfields.check_filter(defn, self.op, value)
        except ValidationError:
            return query.filter(customfields.never())  # a value that cannot match
        return query.filter(customfields.record_condition(self.model.id, defn, self.op, value))


_FILTERS: dict[str, type[CustomFieldFilter]] = {
    op: type(f"CustomField_{op}", (CustomFieldFilter,), {"op": op, "name": label})
    for op, label in OPERATOR_LABELS.items()}


def filter_class(op: str) -> type[CustomFieldFilter]:
    return _FILTERS[op]


def json_schema(defn: FieldDef) -> dict[str, Any]:
    """The OpenAPI schema of a custom field's value."""
    base: dict[str, Any] = {"description": f"{defn.label} (custom field)",
                            "nullable": True}
    if defn.type == "text":
        base.update(type="string", maxLength=customfields.MAX_TEXT)
    elif defn.type in ("number", "money"):
        base.update(type="number")
        if defn.min_value is not None:
            base["minimum"] = float(defn.min_value)
        if defn.max_value is not None:
            base["maximum"] = float(defn.max_value)
        if defn.type == "money":
            base["multipleOf"] = 0.01
    elif defn.type == "date":
        base.update(type="string", format="date")
    elif defn.type == "boolean":
        base.update(type="boolean")
    elif defn.type == "choice":
        base.update(type="string", enum=[*defn.choices, None])
    elif defn.type == "multi_choice":
        base.update(type="array", items={"type": "string", "enum": list(defn.choices)})
        base.pop("nullable")
    elif defn.type == "link":
        base.update(type="integer", description=f"{defn.label} (custom field): the id of a "
                                                f"{defn.target_model}")
    return base


def form_field(defn: FieldDef) -> Any:
    """A WTForms field for a custom field; its validator is :func:`customfields.parse`."""

    def check(form: Any, field: Any) -> None:
        try:
            customfields.parse(defn, field.data)
        except ValidationError as exc:
            raise FormError(" ".join(map(str, exc.messages))) from None

    required = [InputRequired()] if defn.required and defn.type != "boolean" else [Optional()]
    kwargs = {"label": defn.label, "validators": [*required, check]}
    if defn.type == "text":
        return StringField(**kwargs)
    if defn.type in ("number", "money"):
        return DecimalField(places=2 if defn.type == "money" else None, **kwargs)
    if defn.type == "date":
        from flask_appbuilder.fieldwidgets import DatePickerWidget

        return DateField(format="%Y-%m-%d", widget=DatePickerWidget(), **kwargs)
    if defn.type == "boolean":
        return BooleanField(label=defn.label, validators=[check])
    if defn.type == "choice":
        return SelectField(choices=[("", "—"), *[(c, c) for c in defn.choices]], **kwargs)
    if defn.type == "multi_choice":
        return SelectMultipleField(choices=[(c, c) for c in defn.choices],
                                   label=defn.label, validators=[check])
    return IntegerField(description=f"The id of a {defn.target_model}", **kwargs)


def sync_views() -> None:
    """Before each request: give every list view of a registered model its custom
    fields, when the definitions changed since this process last did."""
    from trellis.views import TrellisModelView

    app = current_app
    version = customfields.version()
    ext = app.extensions["trellis"]
    if getattr(ext, "custom_fields_synced", object()) == version:
        return
    for view in app.appbuilder.baseviews:
        if isinstance(view, TrellisModelView):
            view.apply_custom_fields(customfields.for_class(view.datamodel.obj))
    ext.custom_fields_synced = version


# ------------------------------------------------------------------ definitions


def _models() -> dict[str, str]:
    """``{registry name: label}`` of the models that can have custom fields."""
    ext = current_app.extensions["trellis"]
    out = {}
    for entry in ext.registry:
        key = entry.model.__mapper__.primary_key
        if len(key) == 1 and key[0].name == "id" and ext.is_enabled(entry.plugin):
            out[entry.name] = entry.label
    return out


class FieldSchema(Schema):
    """A custom field as the API and the admin form take it."""

    model = fields.String(required=True)
    key = fields.String(required=True, validate=validate.Regexp(
        KEY, error="Use 1 to 40 lower-case letters, digits and _, starting with a letter."))
    label = fields.String(required=True, validate=validate.Length(min=1, max=100))
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    required = fields.Boolean(load_default=False)
    min_value = fields.Decimal(allow_none=True, load_default=None, allow_nan=False,
                               validate=validate.Range(-LIMIT, LIMIT))
    max_value = fields.Decimal(allow_none=True, load_default=None, allow_nan=False,
                               validate=validate.Range(-LIMIT, LIMIT))
    choices = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                          load_default=list, validate=validate.Length(max=200))
    target_model = fields.String(allow_none=True, load_default=None)
    position = fields.Integer(load_default=0, validate=validate.Range(-10000, 10000))
    active = fields.Boolean(load_default=True)

    @validates_schema(skip_on_field_errors=False)
    def _rules(self, data: dict[str, Any], partial: Any = None, **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        kind = data.get("type")
        models = _models()
        if "model" in data and data["model"] not in models:
            errors["model"] = [f"Must be one of: {', '.join(models)}."]
        if kind in ("choice", "multi_choice"):
            choices = data.get("choices") or []
            if not choices:
                errors["choices"] = ["Give at least one choice."]
            elif len(set(choices)) != len(choices):
                errors["choices"] = ["Choices must differ."]
            elif any(";" in c for c in choices):
                errors["choices"] = ["A choice may not contain ';' (it separates choices "
                                     "in files)."]
        elif kind and data.get("choices"):
            errors["choices"] = ["Only choice and multi_choice fields have choices."]
        if kind == "link":
            if data.get("target_model") not in models:
                errors["target_model"] = [f"Must be one of: {', '.join(models)}."]
        elif kind and data.get("target_model"):
            errors["target_model"] = ["Only link fields have a target model."]
        low, high = data.get("min_value"), data.get("max_value")
        if kind and kind not in ("number", "money") and (low is not None or high is not None):
            errors["min_value"] = ["Only number and money fields have a range."]
        elif low is not None and high is not None and low > high:
            errors["max_value"] = ["Must not be less than min_value."]
        if errors:
            raise ValidationError(errors)


#: What an update may change: never the model, key or type (the values depend on them).
UPDATABLE = ("label", "required", "min_value", "max_value", "choices", "position", "active")


def _row_dict(row: CustomField) -> dict[str, Any]:
    return {"id": row.id, "model": row.model, "key": row.key, "name": PREFIX + row.key,
            "label": row.label, "type": row.type, "required": row.required,
            "min_value": customfields._plain(row.min_value),
            "max_value": customfields._plain(row.max_value), "choices": list(row.choices or []),
            "target_model": row.target_model, "position": row.position, "active": row.active}


def create(data: dict[str, Any]) -> CustomField:
    """Create a field from input (raises ``ValidationError`` with field errors)."""
    loaded = FieldSchema().load(data)
    if db.session.scalar(select(CustomField.id).where(
            CustomField.model == loaded["model"], CustomField.key == loaded["key"])):
        raise ValidationError({"key": [f"{loaded['model']} already has a field "
                                       f"{loaded['key']!r}."]})
    if loaded["type"] not in ("choice", "multi_choice"):
        loaded["choices"] = None
    row = CustomField(**loaded)
    db.session.add(row)
    db.session.flush()
    audit.log(db.session, "created", AUDIT_MODEL, row.id,
              {k: {"old": None, "new": audit.jsonable(v)} for k, v in _row_dict(row).items()
               if v is not None and k != "id"})
    db.session.commit()
    customfields.forget()
    return row


def update(row: CustomField, data: dict[str, Any]) -> CustomField:
    """Change label, rules, order or active state (renaming keeps the values)."""
    fixed = [k for k in ("model", "key", "type", "target_model")
             if k in data and data[k] != getattr(row, k)]
    if fixed:
        raise ValidationError({k: ["Cannot be changed; add a new field instead."]
                               for k in fixed})
    current = _row_dict(row)
    merged = {k: current[k] for k in ("model", "key", "type", "target_model", *UPDATABLE)}
    merged.update({k: v for k, v in data.items() if k in UPDATABLE})
    loaded = FieldSchema().load(merged)
    changes = {}
    for name in UPDATABLE:
        new = loaded[name] if name != "choices" or row.type in ("choice", "multi_choice") \
            else None
        if isinstance(new, Decimal):
            new = new.normalize()
        old = getattr(row, name)
        if (old.normalize() if isinstance(old, Decimal) else old) != new and \
                not (name == "choices" and (old or []) == (new or [])):
            changes[name] = {"old": audit.jsonable(old), "new": audit.jsonable(new)}
            setattr(row, name, new)
    if "choices" in changes:
        removed = set(changes["choices"]["old"] or []) - set(changes["choices"]["new"] or [])
        if removed and db.session.scalar(select(func.count()).select_from(CustomValue).where(
                CustomValue.field_id == row.id, CustomValue.value_text.in_(removed))):
            db.session.rollback()
            raise ValidationError({"choices": [
                f"Records still have {', '.join(sorted(removed))}; change them first."]})
    if changes:
        action = "renamed" if set(changes) == {"label"} else "updated"
        audit.log(db.session, action, AUDIT_MODEL, row.id, changes)
    db.session.commit()
    customfields.forget()
    return row


def value_count(row: CustomField) -> int:
    return db.session.scalar(select(func.count()).select_from(CustomValue)
                             .where(CustomValue.field_id == row.id)) or 0


def remove(row: CustomField) -> int:
    """Delete the field and, in one statement, its values (audited)."""
    count = value_count(row)
    db.session.execute(delete(CustomValue).where(CustomValue.field_id == row.id))
    audit.log(db.session, "deleted", AUDIT_MODEL, row.id,
              {**{k: {"old": audit.jsonable(v), "new": None}
                  for k, v in _row_dict(row).items() if v is not None and k != "id"},
               "values_deleted": count})
    db.session.delete(row)
    db.session.commit()
    customfields.forget()
    return count


def _messages(exc: ValidationError) -> dict[str, Any]:
    return exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}


class CustomFieldApi(BaseApi):
    """``/api/v1/custom_field/``: list, create, change and remove custom fields."""

    resource_name = "custom_field"
    class_permission_name = RESOURCE
    method_permission_name = {"get_list": "read", "get": "read", "post": "write",
                              "put": "write", "delete": "write"}
    base_permissions = ["can_read", "can_write"]
    allow_browser_login = True
    openapi_spec_tag = "Custom fields"

    def _row(self, pk: int) -> CustomField | None:
        return db.session.get(CustomField, pk) if abs(pk) <= 2**63 - 1 else None

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get_list")
    def get_list(self) -> Any:
        """Custom fields of every model, or of one (``?model=contact``).
        ---
        get:
          parameters:
          - in: query
            name: model
            schema: {type: string}
          responses:
            200:
              description: '{"result": [field, ...], "types": [...], "models": {...}}'
        """
        stmt = select(CustomField).order_by(CustomField.model, CustomField.position,
                                            CustomField.id)
        if request.args.get("model"):
            stmt = stmt.where(CustomField.model == request.args["model"])
        return self.response(200, result=[_row_dict(r) for r in db.session.scalars(stmt)],
                             types=list(TYPES), models=_models(),
                             operators={k: list(v) for k, v in OPERATORS.items()})

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, pk: int) -> Any:
        """One custom field, with how many values it holds.
        ---
        get:
          responses:
            200:
              description: '{"result": field, "values": count}'
        """
        row = self._row(pk)
        if row is None:
            return self.response_404()
        return self.response(200, result=_row_dict(row), values=value_count(row))

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def post(self) -> Any:
        """Add a field to a model (takes effect at once, in every process within
        ``TRELLIS_CUSTOM_FIELDS_TTL`` seconds).
        ---
        post:
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            201:
              description: '{"id": id, "result": field}'
        """
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message="Request is not a JSON object")
        try:
            row = create(body)
        except ValidationError as exc:
            db.session.rollback()
            return self.response_400(message=_messages(exc))
        return self.response(201, id=row.id, result=_row_dict(row))

    @expose("/<int:pk>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, pk: int) -> Any:
        """Rename a field or change its rules (model, key and type are fixed).
        ---
        put:
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            200:
              description: '{"result": field}'
        """
        row = self._row(pk)
        if row is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message="Request is not a JSON object")
        try:
            update(row, body)
        except ValidationError as exc:
            db.session.rollback()
            return self.response_400(message=_messages(exc))
        return self.response(200, result=_row_dict(row))

    @expose("/<int:pk>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("delete")
    def delete(self, pk: int) -> Any:
        """Remove a field and all its values: confirm with ``?confirm=<key>``.
        ---
        delete:
          parameters:
          - in: query
            name: confirm
            schema: {type: string}
          responses:
            200:
              description: '{"message": ..., "values_deleted": count}'
        """
        row = self._row(pk)
        if row is None:
            return self.response_404()
        if request.args.get("confirm") != row.key:
            return self.response_400(message={"confirm": [
                f"Removing {row.label!r} deletes its {value_count(row)} value(s); "
                f"repeat with ?confirm={row.key} to do it."]})
        count = remove(row)
        return self.response(200, message=f"Removed {row.label!r}.", values_deleted=count)


class CustomFieldsView(BaseView):
    """*Admin > Custom fields*: list, add, edit and (after confirming) remove."""

    route_base = "/customfields"
    default_view = "index"
    class_permission_name = RESOURCE
    method_permission_name = {"index": "read", "add": "write", "edit": "write",
                              "remove": "write"}
    base_permissions = ["can_read", "can_write"]

    @expose("/")
    @has_access
    def index(self) -> Any:
        from trellis.admin import ActionForm

        rows = list(db.session.scalars(select(CustomField).order_by(
            CustomField.model, CustomField.position, CustomField.id)))
        return self.render_template("trellis/custom_fields.html", rows=rows,
                                    models=_models(), form=ActionForm(), mode="list",
                                    labels=customfields.TYPE_LABELS)

    def _form_data(self) -> dict[str, Any]:
        form = request.form
        data: dict[str, Any] = {k: form.get(k, "").strip()
                                for k in ("model", "key", "label", "type", "target_model",
                                          "min_value", "max_value", "position")}
        for name in ("min_value", "max_value", "target_model"):
            if data[name] == "":
                data[name] = None
        data["position"] = data["position"] or 0
        data["required"] = form.get("required") == "y"
        data["active"] = form.get("active") == "y"
        data["choices"] = [c.strip() for c in form.get("choices", "").splitlines()
                           if c.strip()]
        return data

    def _page(self, mode: str, row: Any = None, values: Any = None,
              errors: Any = None) -> Any:
        from trellis.admin import ActionForm

        return self.render_template("trellis/custom_fields.html", mode=mode, row=row,
                                    values=values or {}, errors=errors or {},
                                    models=_models(), types=customfields.TYPE_LABELS,
                                    form=ActionForm(),
                                    count=value_count(row) if row is not None else 0)

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        if request.method == "GET":
            return self._page("add", values={"model": request.args.get("model", ""),
                                             "active": True})
        data = self._form_data()
        try:
            row = create(data)
        except ValidationError as exc:
            db.session.rollback()
            return self._page("add", values=data, errors=_messages(exc))
        flash(f"Added the field “{row.label}” to {row.model}.", "success")
        return redirect(url_for("CustomFieldsView.index"))

    @expose("/<int:pk>/edit", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: int) -> Any:
        row = db.session.get(CustomField, pk)
        if row is None:
            abort(404)
        if request.method == "GET":
            return self._page("edit", row=row, values=_row_dict(row))
        data = {k: v for k, v in self._form_data().items() if k in UPDATABLE}
        try:
            update(row, data)
        except ValidationError as exc:
            db.session.rollback()
            row = db.session.get(CustomField, pk)
            return self._page("edit", row=row, values={**_row_dict(row), **data},
                              errors=_messages(exc))
        flash(f"Saved the field “{row.label}”.", "success")
        return redirect(url_for("CustomFieldsView.index"))

    @expose("/<int:pk>/remove", methods=["GET", "POST"])
    @has_access
    def remove(self, pk: int) -> Any:
        row = db.session.get(CustomField, pk)
        if row is None:
            abort(404)
        if request.method == "GET" or request.form.get("confirm") != row.key:
            if request.method == "POST":
                flash(f"Type the key {row.key} to confirm.", "danger")
            return self._page("remove", row=row)
        label = row.label
        count = remove(row)
        flash(f"Removed the field “{label}” and its {count} value(s).", "success")
        return redirect(url_for("CustomFieldsView.index"))
