"""Base class for plugin REST APIs: one permission pair per model, bounded counts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from flask import current_app, g, request
from flask_appbuilder.api import ModelRestApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_appbuilder.api.convert import Model2SchemaConverter
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import UniqueConstraint, select

from trellis import rules
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db

#: FAB method -> the permission it needs: ``can_read`` or ``can_write`` on the
#: resource (``<plugin>.<Model>``), shared with the model's admin view.
API_PERMISSIONS = {
    "get_list": "read",
    "get": "read",
    "info": "read",
    "post": "write",
    "put": "write",
    "delete": "write",
    # POST /_duplicates: the duplicate check before creating (trellis.duplicates)
    "duplicates": "write",
}


class UtcDateTime(fields.DateTime):
    """A timestamp always written with its offset: Trellis stores UTC, and SQLite
    hands timestamps back without a time zone."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


def utc_datetimes(schema: Any) -> Any:
    """Make every timestamp field of ``schema`` a :class:`UtcDateTime` (in place)."""
    for field in schema.fields.values():
        if type(field) is fields.DateTime:
            field.__class__ = UtcDateTime
    return schema


class TrellisSchemaConverter(Model2SchemaConverter):
    """FAB's converter, with foreign-key columns as plain fields.

    Trellis APIs take and return ``account_id: 5`` rather than nested objects;
    under marshmallow 4 FAB's schemas otherwise reject FK column names.
    """

    def _meta_schema_factory(self, columns, model, class_mixin, parent_schema_name=None):
        schema = super()._meta_schema_factory(columns, model, class_mixin, parent_schema_name)
        schema.opts.include_fk = True
        meta = type("Meta", (schema.Meta,), {"include_fk": True})
        return type(schema.__name__, (schema,), {"Meta": meta})

    def convert(self, columns, model=None, nested=True, parent_schema_name=None):
        schema = super().convert(columns, model, nested, parent_schema_name)
        model = model or self.datamodel.obj
        table = model.__table__
        for name, field in schema.fields.items():
            column = table.columns.get(name)
            if column is None or field.dump_only:
                continue
            if column.foreign_keys:
                field.validators.append(_exists(next(iter(column.foreign_keys)).column, name))
            if column.unique or any(
                    isinstance(c, UniqueConstraint) and [col.name for col in c.columns] == [name]
                    for c in table.constraints):
                field.validators.append(_unique(model, column))
        # Who may own a record is checked at flush time (trellis.validation),
        # for every path a write takes, not only this API.
        return utc_datetimes(schema)


def _unique(model: type, column: Any) -> Any:
    """A validator: no other record has this value in a unique column (a clear 400
    instead of the database's integrity error)."""

    def validate(value: Any) -> None:
        if value is None:
            return
        key = model.__mapper__.primary_key[0]
        stmt = select(key).where(column == value).limit(1)
        pk = (request.view_args or {}).get("pk")
        if pk is not None:  # an update: the record itself may keep its value
            stmt = stmt.where(key != pk)
        if db.session.execute(stmt).first() is not None:
            raise ValidationError(f"Another record already has {value!r}.")

    return validate


def _exists(target: Any, field_name: str) -> Any:
    """A validator: the referenced row must exist and be visible to the user under
    the record rules (a clear 400, not a DB error, and no peeking at others' ids)."""

    def referenced() -> tuple[type | None, str]:
        for entry in current_app.extensions["trellis"].registry:
            if entry.model.__table__ is target.table:
                return entry.model, entry.label.lower()
        return None, target.table.name.removeprefix("trellis_").removeprefix("ab_")

    def validate(value: Any) -> None:
        if value is None:
            return
        model, label = referenced()
        if isinstance(value, int) and abs(value) > MAX_ID:
            raise ValidationError(f"No {label} with id {value}.")
        stmt = select(target).where(target == value).limit(1)
        # FAB merges the stored record into an update: only what the client sent
        # must point at records it may see; an unchanged reference stays valid.
        if model is not None and field_name in g.get("trellis_submitted", ()):
            stmt = rules.restrict(stmt, model)
        if db.session.execute(stmt).first() is None:
            raise ValidationError(f"No {label} with id {value}.")

    return validate


def _error(description: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"message": message}}}}}


_TEXT = {"type": "string"}
#: The shared error answers, as Trellis gives them: a 400's ``message`` is a
#: text or ``{field: [messages]}`` (FAB documents only a text).
ERROR_RESPONSES = {
    "400": _error("Bad request: the message, or {field: [messages]} (nested for the "
                  "items of lists and objects: {field: {index: [messages]}})",
                  {"oneOf": [_TEXT, {"type": "object"}]}),
    "401": _error("Unauthorized", _TEXT),
    "403": _error("Forbidden", _TEXT),
    "404": _error("Not found", _TEXT),
    "409": {"description": "Changed since you read it (optimistic locking): message, "
                           "current_version and changes",
            "content": {"application/json": {"schema": {"type": "object"}}}},
    "422": _error("Could not process entity", _TEXT),
    "500": _error("Fatal error", _TEXT),
}
#: Largest id a database integer column holds; larger ids answer 404, not 500.
MAX_ID = 2**63 - 1


def _pk_in_range(pk: Any) -> bool:
    try:
        return abs(int(pk)) <= MAX_ID
    except (TypeError, ValueError):
        return True  # not a number: FAB answers 404 for a key it cannot find


class TrellisModelApi(ModelRestApi):
    """A FAB ``ModelRestApi`` with Trellis' conventions.

    Set ``datamodel = TrellisSQLAInterface(MyModel)`` and ``resource_name``.
    Permissions are ``can_read`` / ``can_write`` on ``<plugin>.<Model>``; list
    responses carry ``count_capped: true`` when more rows match than the cap.
    Invalid input answers 400 with the marshmallow field errors.
    """

    method_permission_name = API_PERMISSIONS
    model2schemaconverter = TrellisSchemaConverter
    #: A stable order, so pages do not shift between requests (PostgreSQL
    #: returns unordered rows in whatever order its scans happen to run).
    base_order = ("id", "asc")
    allow_browser_login = True
    page_size = 25
    max_page_size = 100

    #: Columns the model's rules fill in when omitted (``ModelSpec.before_save``),
    #: so the API does not require them although the database does.
    optional_columns: list[str] = []
    #: Values the API adds to each result itself (in ``pre_get``/``pre_get_list``),
    #: ``{name: JSON schema}``, so the OpenAPI document lists them.
    computed_fields: dict[str, dict[str, Any]] = {}

    def __init__(self) -> None:
        self.base_filters = [*(self.base_filters or []),
                             *rules.rule_filters(self.datamodel.obj)]
        super().__init__()

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        for name in self.optional_columns:
            field = self.add_model_schema.fields.get(name)
            if field is not None:
                field.required = False

    def pre_add(self, item: Any) -> None:
        rules.default_owner(item)

    def post_headless(self) -> Any:
        return self._with_duplicates(self._saving(super().post_headless))

    def _with_duplicates(self, response: Any) -> Any:
        """A created record that may duplicate others: ``warnings.duplicates`` in
        the 201 answer (the record is created all the same)."""
        from trellis import duplicates

        if response.status_code != 201 or not duplicates.has_matcher(self.datamodel.obj):
            return response
        body = response.get_json()
        item = db.session.get(self.datamodel.obj, body.get("id"))
        found = duplicates.warnings_for(db.session, item) if item is not None else []
        body["warnings"] = {"duplicates": found}
        response.set_data(current_app.json.dumps(body))
        return response

    @expose("/_duplicates", methods=["POST"])
    @protect()
    @safe
    @permission_name("duplicates")
    def duplicates(self) -> Any:
        """Records a would-be record duplicates (ask before creating).
        ---
        post:
          description: >-
            The records the JSON body (a record as POST / would take, any
            subset of fields) would duplicate; nothing is saved.
          requestBody:
            content:
              application/json:
                schema: {type: object}
          responses:
            200:
              description: '{"duplicates": [{"model", "id", "label", "reason"}]}'
            400:
              $ref: '#/components/responses/400'
            404:
              $ref: '#/components/responses/404'
        """
        from trellis import duplicates

        if not duplicates.has_matcher(self.datamodel.obj):
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message="Request is not a JSON object")
        g.trellis_submitted = set(body)
        try:
            item = self.add_model_schema.load(body, partial=True)
        except ValidationError as err:
            return self.response_400(message=err.messages)
        if isinstance(item, dict):
            item = self.datamodel.obj(**item)
        try:
            found = duplicates.find_duplicates(db.session, item)
        finally:
            if item in db.session:
                db.session.expunge(item)
        return self.response(200, duplicates=found)

    def get_headless(self, pk: Any, **kwargs: Any) -> Any:
        """The record, with its version as the ``ETag`` (send it back as ``If-Match``)."""
        from trellis import locking

        if not _pk_in_range(pk):
            return self.response_404()
        response = super().get_headless(pk, **kwargs)
        if response.status_code == 200:
            item = self.datamodel.get(pk, self._base_filters)
            if item is not None:
                response.headers["ETag"] = f'"{locking.version(db.session, item)}"'
        return response

    def put_headless(self, pk: Any) -> Any:
        from trellis import locking

        if not _pk_in_range(pk):
            return self.response_404()
        match = request.headers.get("If-Match", "").strip().strip('"').removeprefix('W/"')
        if match and match != "*":
            item = self.datamodel.get(pk, self._base_filters)
            if item is not None:
                clash = locking.conflict(db.session, item, match)
                if clash is not None:
                    db.session.rollback()
                    return self.response(409, **clash)
        return self._saving(lambda: super(TrellisModelApi, self).put_headless(pk))

    def _saving(self, write: Any) -> Any:
        """Model rules broken at flush time answer 400 with their field errors; a
        uniqueness race lost to another request answers 400 too, never 500."""
        from sqlalchemy.exc import IntegrityError

        from trellis.db import db
        from trellis.validation import RecordInvalid

        body = request.get_json(silent=True)
        g.trellis_submitted = set(body) if isinstance(body, dict) else set()
        refused = self._take_custom_values(body)
        if refused is not None:
            return refused
        try:
            return self._with_custom_values(write())
        except RecordInvalid as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)
        except IntegrityError:
            db.session.rollback()
            return self.response_400(message={"_schema": [
                "This conflicts with an existing record (a value that must be unique, or "
                "a reference to a record that no longer exists)."]})

    # ------------------------------------------------------- custom fields

    def _custom_model(self) -> str | None:
        from trellis import customfields

        return customfields.model_name(self.datamodel.obj)

    def _take_custom_values(self, body: Any) -> Any:
        """Take the ``cf_*`` keys out of the JSON body before FAB reads it; parse
        them (a 400 naming each bad field, with the schema's own errors).  The
        parsed values are written with the record, in its transaction (:meth:`pre_add`)."""
        from trellis import customfields

        g.pop("trellis_custom_values", None)
        model = self._custom_model()
        if model is None or not isinstance(body, dict):
            return None
        regular, custom = customfields.split(body)
        partial = request.method == "PUT"
        values, errors = customfields.load(model, custom, partial=partial)
        if errors:
            schema = self.edit_model_schema if partial else self.add_model_schema
            try:
                schema_errors = schema.validate(regular, partial=partial)
            except Exception:  # noqa: BLE001 - the custom errors are the answer anyway
                schema_errors = {}
            return self.response_400(message={**(schema_errors or {}), **errors})
        if custom:
            request._cached_json = (regular, regular)  # what FAB's request.json answers
        g.trellis_custom_values = values  # staged by TrellisSQLAInterface.add/edit
        return None

    def _with_custom_values(self, response: Any) -> Any:
        """The record's custom values in a 201/200 answer to POST/PUT."""
        from trellis import customfields

        model = self._custom_model()
        if model is None or response.status_code not in (200, 201) or \
                not customfields.definitions(model):
            return response
        body = response.get_json()
        result = body.get("result") if isinstance(body, dict) else None
        record_id = body.get("id") or (request.view_args or {}).get("pk")
        if not isinstance(result, dict) or record_id is None:
            return response
        self._add_custom(model, [result], [int(record_id)])
        response.set_data(current_app.json.dumps(body))
        return response

    def _add_custom(self, model: str, results: list[dict[str, Any]], ids: list[Any]) -> None:
        from trellis import customfields

        fields = customfields.definitions(model)
        if not fields:
            return
        values = customfields.values_for(db.session, model, ids, fields)
        by_name = {f.name: f for f in fields}
        for result, record_id in zip(results, ids):
            for name, value in values.get(record_id, {}).items():
                result[name] = customfields.jsonable(by_name[name], value)

    def pre_get(self, data: dict[str, Any]) -> None:
        model = self._custom_model()
        if model is not None and isinstance(data.get("result"), dict):
            try:
                self._add_custom(model, [data["result"]], [int(data["id"])])
            except (TypeError, ValueError):
                pass

    def _handle_filters_args(self, rison_args: dict[str, Any]) -> Any:
        """FAB's filters, plus filters on custom fields (``col: cf_<key>``), each
        ``id IN (SELECT record_id ...)`` (:func:`trellis.customfields.record_condition`)."""
        from flask_appbuilder.exceptions import FABException
        from trellis import customfields
        from trellis.customfield_views import filter_class

        wanted = rison_args.get("filters", []) or []
        custom = [f for f in wanted if isinstance(f, dict)
                  and str(f.get("col", "")).startswith(customfields.PREFIX)]
        if not custom:
            return super()._handle_filters_args(rison_args)
        joined = super()._handle_filters_args(
            {**rison_args, "filters": [f for f in wanted if f not in custom]})
        model = self._custom_model()
        for spec in custom:
            col, op, value = spec.get("col"), spec.get("opr"), spec.get("value")
            defn = customfields.field(model, col) if model else None
            if defn is None:
                raise FABException(f"Filter column: {col} not allowed to filter")
            try:
                customfields.check_filter(defn, op, value)
            except ValidationError as exc:
                raise FABException(f"{col}: {' '.join(map(str, exc.messages))}") from None
            joined.add_filter(col, filter_class(op), value)
        return joined

    def _handle_order_args(self, rison_args: dict[str, Any]) -> tuple[str, str]:
        from trellis import customfields

        column = rison_args.get("order_column", "")
        model = self._custom_model()
        if isinstance(column, str) and column.startswith(customfields.PREFIX) and model \
                and customfields.field(model, column) is not None:
            direction = rison_args.get("order_direction", "asc")
            return column, "desc" if direction == "desc" else "asc"
        return super()._handle_order_args(rison_args)

    def get_list_headless(self, **kwargs: Any) -> Any:
        """FAB's list; a number in ``q`` the database cannot hold (a page, a filter
        value) answers 400 instead of failing in the driver."""
        from sqlalchemy.exc import DataError, StatementError

        try:
            return super().get_list_headless(**kwargs)
        except (OverflowError, DataError, StatementError) as exc:
            if isinstance(exc, StatementError) and not isinstance(
                    exc.orig, (OverflowError, ValueError)) and not isinstance(exc, DataError):
                raise
            db.session.rollback()
            return self.response_400(message={"q": [
                "A number in the query is out of range (page, page_size or a filter value)."]})

    def delete_headless(self, pk: Any) -> Any:
        if not _pk_in_range(pk):
            return self.response_404()
        return super().delete_headless(pk)

    # -------------------------------------------------------------- OpenAPI

    def add_apispec_components(self, api_spec: Any) -> None:
        super().add_apispec_components(api_spec)
        api_spec.components.responses.update(ERROR_RESPONSES)

    def add_api_spec(self, api_spec: Any) -> None:
        """FAB's operations, corrected to say what the endpoints return."""
        super().add_api_spec(api_spec)
        base = f"/api/v1/{self.resource_name}/"
        for path, operations in api_spec._paths.items():
            if not path.startswith(base):
                continue
            for method, operation in operations.items():
                _correct_operation(path, method, operation)
        name = type(self).__name__
        self._custom_api_spec(api_spec, name)
        for suffix in ("get_list", "get"):
            component = api_spec.components.schemas.get(f"{name}.{suffix}")
            if component is not None:
                component.setdefault("properties", {}).update(self.computed_fields)
        for suffix, schema in (("get_list", self.list_model_schema),
                               ("get", self.show_model_schema),
                               ("post", self.add_model_schema),
                               ("put", self.edit_model_schema)):
            component = api_spec.components.schemas.get(f"{name}.{suffix}")
            if component is None or schema is None:
                continue
            for field_name, field in schema.fields.items():
                prop = component.get("properties", {}).get(field_name)
                if prop is not None and isinstance(field, fields.Decimal):
                    prop.pop("type", None)  # sent as text ("12.50"), taken as text or number
                    prop["oneOf"] = [{"type": "string", "format": "decimal"},
                                     {"type": "number"}]

    def _custom_api_spec(self, api_spec: Any, name: str) -> None:
        """The model's custom fields in its schemas (the document is built per request)."""
        from trellis import customfields
        from trellis.customfield_views import json_schema

        model = self._custom_model()
        fields = customfields.definitions(model) if model else []
        for suffix in ("get_list", "get", "post", "put"):
            component = api_spec.components.schemas.get(f"{name}.{suffix}")
            if component is None:
                continue
            props = component.setdefault("properties", {})
            for defn in fields:
                props[defn.name] = json_schema(defn)
                if suffix == "post" and defn.required:
                    component.setdefault("required", [])
                    if defn.name not in component["required"]:
                        component["required"].append(defn.name)

    def response_422(self, message: Any = None) -> Any:
        """FAB answers invalid input with 422; Trellis promises 400 with field errors."""
        return self.response_400(message=message)

    def pre_get_list(self, data: dict[str, Any]) -> None:
        cap = current_app.config.get("TRELLIS_COUNT_CAP", 10000)
        data["count_capped"] = data.get("count", 0) > cap
        if data["count_capped"]:
            data["count"] = cap
        model = self._custom_model()
        if model is not None:  # one query for the page
            self._add_custom(model, data.get("result") or [], data.get("ids") or [])


def _correct_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    """Where FAB's OpenAPI text and FAB's answers differ, document the answers."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path" and parameter.get("name") == "pk":
            parameter["schema"] = {"type": "integer", "minimum": 0}
    responses = operation.setdefault("responses", {})
    if method == "put" and path.endswith("{pk}"):
        responses.setdefault("409", {"$ref": "#/components/responses/409"})
    for status, response in responses.items():
        schema = (response.get("content", {}).get("application/json", {}) or {}).get("schema")
        props = (schema or {}).get("properties") or {}
        if path.endswith("/_info") and status == "200":
            for key in ("add_columns", "edit_columns"):
                if key in props:
                    props[key] = {"type": "array", "items": {"type": "object"}}
        if "ids" in props:  # the record ids: numbers for integer keys
            props["ids"] = {"type": "array", "items": {}}
        if "id" in props and status in ("200", "201"):
            props["id"] = {}


def schema_validators(schema: type[Schema]) -> dict[str, Any]:
    """FAB ``validators_columns`` carrying a marshmallow schema's rules (one
    validator per column; FAB already derives maximum lengths from columns)."""

    def extra(field: fields.Field) -> list[Any]:
        return [v for v in field.validators
                if not (isinstance(v, validate.Length) and v.min is None and v.equal is None)]

    return {name: validate.And(*extra(f)) for name, f in schema().fields.items() if extra(f)}


def model_api(model: type, resource: str, columns: Sequence[str], *,
              read_only: Sequence[str] = (), search: Sequence[str] | None = None,
              schema: type[Schema] | None = None, tag: str | None = None,
              **attrs: Any) -> type[TrellisModelApi]:
    """A :class:`TrellisModelApi` at ``/api/v1/<resource>/``.

    ``columns`` are read and written, ``read_only`` only returned; ``search``
    (default: ``columns``) can be filtered on; a ``schema`` adds its
    validators; other keyword arguments become class attributes.
    """
    body: dict[str, Any] = {
        "resource_name": resource,
        "datamodel": TrellisSQLAInterface(model),
        "list_columns": ["id", *columns, *read_only],
        "show_columns": ["id", *columns, *read_only],
        "add_columns": list(columns),
        "edit_columns": list(columns),
        # "id" is filterable so clients can page by key: (col:id,opr:gt,value:<last>)
        "search_columns": ["id", *(search if search is not None else columns)],
        "order_columns": ["id", *(search if search is not None else columns)],
        "openapi_spec_tag": tag or f"{model.__name__}s",
    }
    if schema is not None:
        body["validators_columns"] = schema_validators(schema)
    body.update(attrs)
    return type(f"{model.__name__}Api", (TrellisModelApi,), body)
