"""The report builder: aggregates over any registered model, defined as data.

A definition names a registry model, filters, up to two group-by fields (dates
by day, week, month, quarter or year) and measures (count, sum, avg, min, max)::

    {"model": "deal",
     "filters": [{"field": "amount", "op": "gte", "value": 100}],
     "group_by": [{"field": "created_on", "bucket": "month"}, {"field": "owner_id"}],
     "measures": [{"op": "count"}, {"op": "sum", "field": "amount"}],
     "chart": "bars", "order_by": "sum:amount", "desc": true, "limit": 500}

:func:`validate` checks it against the model registry: only models whose
``can_read`` the user has, only fields of the model's registry schema (never
arbitrary column names), operators and values that fit each field's type; the
errors name the field (``{"filters": {0: {"field": ["..."]}}}``).  :func:`run`
builds one ``SELECT … GROUP BY`` with SQLAlchemy (no SQL text is assembled),
applies the user's record rules with :func:`trellis.rules.restrict` and
returns the columns and rows; :func:`widget_data` shapes them for a chart.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from flask import current_app
from flask_appbuilder import ModelView
from flask_appbuilder.api import ModelRestApi
from marshmallow import Schema, ValidationError, fields, validate as v
from sqlalchemy import (Boolean, Date, DateTime, Float, Integer, Numeric, String, Text, func,
                        inspect as sa_inspect, nulls_last, select)

from trellis import rules
from trellis.db import db
from trellis.extension import current_trellis
from trellis.sqlfuncs import BUCKETS, date_bucket

CHARTS = ("bars", "series", "pie", "funnel", "table")
MEASURES = ("count", "sum", "avg", "min", "max")
MAX_GROUPS, MAX_FILTERS, MAX_MEASURES, MAX_LIMIT, DEFAULT_LIMIT = 2, 20, 6, 5000, 500

#: Operators by field type.
COMPARE = ("eq", "ne", "lt", "lte", "gt", "gte", "is_null")
OPS = {
    "integer": (*COMPARE, "in"),
    "number": COMPARE,
    "date": COMPARE,
    "datetime": COMPARE,
    "text": ("eq", "ne", "contains", "starts_with", "in", "is_null"),
    "boolean": ("eq", "ne", "is_null"),
}
#: How a filter value is read, by field type (marshmallow does the parsing).
VALUE_FIELDS = {"integer": fields.Integer, "number": fields.Decimal, "date": fields.Date,
                "datetime": fields.DateTime, "text": fields.String,
                "boolean": fields.Boolean}


@dataclass(frozen=True)
class Field:
    """A reportable field of a model: a column that its registry schema exposes."""

    name: str
    label: str
    type: str
    column: Any
    #: ``(model class or None, label)`` of the table a foreign key points to.
    target: tuple[Any, str] | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "type": self.type,
                "ops": list(OPS[self.type]),
                "group": self.type != "number",
                "buckets": list(BUCKETS) if self.type in ("date", "datetime") else [],
                "measures": [m for m in MEASURES if m == "count" or (
                    m in ("min", "max") and self.type in ("integer", "number", "date",
                                                          "datetime"))
                    or (m in ("sum", "avg") and self.type in ("integer", "number"))]}


def _type_of(column: Any) -> str | None:
    kind = column.type
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, DateTime):
        return "datetime"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, (Numeric, Float)):
        return "number"
    if isinstance(kind, (String, Text)):
        return "text"
    return None  # JSON, binary...: not reportable


def _humanize(name: str) -> str:
    base = name[:-3] if name.endswith("_id") and name != "id" else name
    return "ID" if name == "id" else base.replace("_", " ").capitalize()


def _target(column: Any) -> tuple[Any, str] | None:
    if not column.foreign_keys:
        return None
    table = next(iter(column.foreign_keys)).column.table
    for entry in current_trellis().registry:
        if entry.model.__table__ is table:
            return entry.model, entry.label
    return (None, "User") if table.name == "ab_user" else None


def fields_of(entry: Any) -> dict[str, Field]:
    """The reportable fields of a registry entry: its schema's fields that are
    columns of a groupable or measurable type (``load_only`` fields excluded)."""
    columns = {attr.key: attr.columns[0] for attr in sa_inspect(entry.model).column_attrs
               if len(attr.columns) == 1}
    out: dict[str, Field] = {}
    for name, field in entry.schema().fields.items():
        column = columns.get(field.attribute or name)
        if column is None or field.load_only:
            continue
        kind = _type_of(column)
        if kind is None:
            continue
        label = (field.metadata or {}).get("label") or _humanize(name)
        out[name] = Field(name, label, kind, getattr(entry.model, column.key), _target(column))
    out.update(_custom_fields(entry))
    return out


#: The report type of each custom field type (multiple choices are not reportable).
CUSTOM_TYPES = {"text": "text", "choice": "text", "number": "number", "money": "number",
                "date": "date", "boolean": "boolean", "link": "integer"}


def _custom_fields(entry: Any) -> dict[str, Field]:
    """The model's custom fields, each value a correlated subquery on the indexed
    ``(field_id, record_id)`` of the value table."""
    from trellis import customfields
    from trellis.models import CustomValue as V

    out: dict[str, Field] = {}
    if customfields.model_name(entry.model) != entry.name:
        return out
    registry = current_trellis().registry
    for defn in customfields.definitions(entry.name):
        kind = CUSTOM_TYPES.get(defn.type)
        if kind is None:
            continue
        column = (select(getattr(V, defn.column)).where(
            V.field_id == defn.id, V.record_id == entry.model.id)
            .limit(1).scalar_subquery())
        target = None
        if defn.type == "link" and defn.target_model in registry:
            linked = registry.get(defn.target_model)
            target = (linked.model, linked.label)
        out[defn.name] = Field(defn.name, defn.label, kind, column, target)
    return out


# ------------------------------------------------------------------ which models


def _resources_by_model() -> dict[type, set[str]]:
    found: dict[type, set[str]] = {}
    for view in current_app.appbuilder.baseviews:
        if isinstance(view, (ModelView, ModelRestApi)) and getattr(view, "datamodel", None):
            found.setdefault(view.datamodel.obj, set()).add(view.class_permission_name)
    return found


def readable_models() -> list[Any]:
    """Registry entries of enabled plugins with a view or API whose ``can_read``
    the user has, and at least one reportable field."""
    ext, sm = current_trellis(), current_app.appbuilder.sm
    resources = _resources_by_model()
    out = []
    for entry in ext.registry:
        if not ext.is_enabled(entry.plugin):
            continue
        if not any(sm.has_access("can_read", r) for r in resources.get(entry.model, ())):
            continue
        out.append(entry)
    return out


def catalogue() -> list[dict[str, Any]]:
    """What the builder offers the user: models, their fields and operators."""
    return [{"name": e.name, "label": e.label, "plugin": e.plugin,
             "fields": [f.describe() for f in fields_of(e).values()]}
            for e in readable_models()]


# ------------------------------------------------------------------ definitions


class _FilterSchema(Schema):
    field = fields.String(required=True)
    op = fields.String(required=True, validate=v.OneOf(sorted({o for ops in OPS.values()
                                                               for o in ops})))
    value = fields.Raw(allow_none=True, load_default=None)


class _GroupSchema(Schema):
    field = fields.String(required=True)
    bucket = fields.String(allow_none=True, load_default=None, validate=v.OneOf(BUCKETS))


class _MeasureSchema(Schema):
    op = fields.String(required=True, validate=v.OneOf(MEASURES))
    field = fields.String(allow_none=True, load_default=None)


class DefinitionSchema(Schema):
    """The shape of a definition; :func:`validate` checks it against the model."""

    model = fields.String(required=True)
    filters = fields.List(fields.Nested(_FilterSchema), load_default=list,
                          validate=v.Length(max=MAX_FILTERS))
    group_by = fields.List(fields.Nested(_GroupSchema), load_default=list,
                           validate=v.Length(max=MAX_GROUPS,
                                             error=f"Group by at most {MAX_GROUPS} fields."))
    measures = fields.List(fields.Nested(_MeasureSchema),
                           load_default=lambda: [{"op": "count", "field": None}],
                           validate=v.Length(min=1, max=MAX_MEASURES))
    chart = fields.String(load_default="bars", validate=v.OneOf(CHARTS))
    order_by = fields.String(allow_none=True, load_default=None)
    desc = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=v.Range(min=1, max=MAX_LIMIT))


@dataclass
class Report:
    """A validated definition, bound to its registry entry and fields."""

    entry: Any
    fields: dict[str, Field]
    #: The definition with filter values parsed (dates, decimals).
    definition: dict[str, Any]
    #: The same as the client sent it, with defaults filled in: JSON, for storing.
    source: dict[str, Any]

    def keys(self) -> list[str]:
        return [group_key(g) for g in self.definition["group_by"]] + [
            measure_key(m) for m in self.definition["measures"]]


def group_key(group: Mapping[str, Any]) -> str:
    return f"{group['field']}:{group['bucket']}" if group.get("bucket") else group["field"]


def measure_key(measure: Mapping[str, Any]) -> str:
    return f"{measure['op']}:{measure['field']}" if measure.get("field") else measure["op"]


def validate(data: Any) -> Report:
    """Check a definition for the current user; raise ``ValidationError`` whose
    ``messages`` name each bad field."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["Send the report definition as a JSON object."]})
    definition = DefinitionSchema().load(data)
    source = copy.deepcopy(definition)
    entry = next((e for e in readable_models() if e.name == definition["model"]), None)
    if entry is None:
        raise ValidationError({"model": [f"No model {definition['model']!r} you may report on."]})
    known = fields_of(entry)
    errors: dict[str, Any] = {}

    def unknown(name: Any) -> list[str]:
        return [f"{entry.label} has no field {name!r} you may report on."]

    for i, item in enumerate(definition["filters"]):
        field = known.get(item["field"])
        if field is None:
            errors.setdefault("filters", {})[i] = {"field": unknown(item["field"])}
            continue
        if item["op"] not in OPS[field.type]:
            errors.setdefault("filters", {})[i] = {"op": [
                f"{item['op']!r} does not apply to {field.label} ({field.type}); use one of "
                f"{', '.join(OPS[field.type])}."]}
            continue
        try:
            item["value"] = _filter_value(field, item["op"], item["value"])
        except ValidationError as exc:
            errors.setdefault("filters", {})[i] = {"value": _messages(exc)}
    for i, item in enumerate(definition["group_by"]):
        field = known.get(item["field"])
        problem = None
        if field is None:
            problem = {"field": unknown(item["field"])}
        elif field.type == "number":
            problem = {"field": [f"{field.label} is a measure, not a category: sum or "
                                 "average it instead."]}
        elif item["bucket"] and field.type not in ("date", "datetime"):
            problem = {"bucket": [f"{field.label} is not a date."]}
        elif field.type == "datetime" and not item["bucket"]:
            problem = {"bucket": [f"Group {field.label} by day, week, month, quarter or year."]}
        if problem:
            errors.setdefault("group_by", {})[i] = problem
    for i, item in enumerate(definition["measures"]):
        if item["field"] is None:
            if item["op"] != "count":
                errors.setdefault("measures", {})[i] = {"field": [
                    f"Choose the field to {item['op']}."]}
            continue
        field = known.get(item["field"])
        if field is None:
            errors.setdefault("measures", {})[i] = {"field": unknown(item["field"])}
        elif item["op"] not in field.describe()["measures"]:
            errors.setdefault("measures", {})[i] = {"op": [
                f"Cannot {item['op']} {field.label} ({field.type})."]}
    report = Report(entry, known, definition, source)
    if not errors and len(set(report.keys())) != len(report.keys()):
        errors["measures"] = ["Each group and measure may appear only once."]
    if not errors and definition["order_by"] is not None \
            and definition["order_by"] not in report.keys():
        errors["order_by"] = [f"Order by one of {', '.join(report.keys())}."]
    if errors:
        raise ValidationError(errors)
    return report


def _messages(exc: ValidationError) -> list[str]:
    messages = exc.messages
    return list(messages) if isinstance(messages, list) else [str(messages)]


def _filter_value(field: Field, op: str, value: Any) -> Any:
    if op == "is_null":
        if not isinstance(value, bool):
            raise ValidationError("Use true or false.")
        return value
    reader = VALUE_FIELDS[field.type]()
    if op == "in":
        if not isinstance(value, list) or not value or len(value) > 100:
            raise ValidationError("Give a list of 1 to 100 values.")
        return [reader.deserialize(item) for item in value]
    if value is None:
        raise ValidationError("A value is required.")
    if op in ("contains", "starts_with") and not str(value):
        raise ValidationError("A value is required.")
    if field.type == "datetime":
        if isinstance(value, str) and len(value) == 10:
            value += "T00:00:00"  # a plain date means its midnight, UTC
        moment = fields.DateTime().deserialize(value)
        if moment.tzinfo is None:  # naive timestamps are UTC
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc)
    return reader.deserialize(value)


# ------------------------------------------------------------------ running


def _condition(column: Any, op: str, value: Any) -> Any:
    if op == "is_null":
        return column.is_(None) if value else column.is_not(None)
    if op == "contains":
        return column.icontains(value, autoescape=True)
    if op == "starts_with":
        return column.istartswith(value, autoescape=True)
    if op == "in":
        return column.in_(value)
    return {"eq": column.__eq__, "ne": column.__ne__, "lt": column.__lt__,
            "lte": column.__le__, "gt": column.__gt__, "gte": column.__ge__}[op](value)


def _measure(report: Report, measure: Mapping[str, Any]) -> Any:
    if measure["field"] is None:
        return func.count()
    column = report.fields[measure["field"]].column
    return getattr(func, measure["op"])(column)


def statement(report: Report) -> Any:
    """The ``select()`` of a report, record rules applied."""
    d = report.definition
    groups = []
    for i, group in enumerate(d["group_by"]):
        column = report.fields[group["field"]].column
        expr = date_bucket(column, group["bucket"]) if group["bucket"] else column
        groups.append(expr.label(f"g{i}"))
    measures = [_measure(report, m).label(f"m{i}") for i, m in enumerate(d["measures"])]
    stmt = select(*groups, *measures).select_from(report.entry.model).where(
        *(_condition(report.fields[f["field"]].column, f["op"], f["value"])
          for f in d["filters"]))
    stmt = rules.restrict(stmt, report.entry.model)
    if groups:
        stmt = stmt.group_by(*groups)
    by_key = dict(zip(report.keys(), [*groups, *measures]))
    order = []
    if d["order_by"]:
        expr = by_key[d["order_by"]]
        order.append(nulls_last(expr.desc() if d["desc"] else expr.asc()))
    order += [nulls_last(g.asc()) for g in groups]
    return stmt.order_by(*order).limit(d["limit"] + 1)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2 ** 53 \
            else round(float(value), 6)
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _labels(field: Field, values: set[Any]) -> dict[str, str]:
    """Names of the records a foreign-key group points to (those the user may see)."""
    ids = [v for v in values if v is not None]
    if field.target is None or not ids:
        return {}
    model, _ = field.target
    if model is None:  # users
        from flask_appbuilder.security.sqla.models import User

        rows = db.session.execute(select(User.id, User.username).where(User.id.in_(ids)))
        return {str(i): name for i, name in rows}
    key = model.__mapper__.primary_key[0]
    rows = db.session.scalars(rules.restrict(select(model).where(key.in_(ids)), model))
    return {str(getattr(row, key.key)): str(row) for row in rows}


def run(report: Report) -> dict[str, Any]:
    """Run a validated report: ``{"columns": [...], "rows": [[...]], "truncated"}``.

    Group columns carry ``labels`` (id → name) when they are foreign keys.
    """
    d = report.definition
    rows = [list(map(_plain, row)) for row in db.session.execute(statement(report)).all()]
    truncated = len(rows) > d["limit"]
    rows = rows[: d["limit"]]
    columns = []
    for i, group in enumerate(d["group_by"]):
        field = report.fields[group["field"]]
        label = field.label + (f" ({group['bucket']})" if group["bucket"] else "")
        column: dict[str, Any] = {"key": group_key(group), "label": label, "role": "group",
                                  "type": "text" if group["bucket"] else field.type}
        labels = _labels(field, {row[i] for row in rows})
        if field.target is not None:
            column["labels"] = labels
        columns.append(column)
    for measure in d["measures"]:
        if measure["field"] is None:
            label = "Count"
        else:
            field = report.fields[measure["field"]]
            label = f"{'Average' if measure['op'] == 'avg' else measure['op'].title()} of " \
                    f"{field.label.lower()}"
        columns.append({"key": measure_key(measure), "label": label, "role": "measure",
                        "type": "number"})
    return {"model": report.entry.name, "model_label": report.entry.label,
            "columns": columns, "rows": rows, "truncated": truncated}


def display_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    """Rows with foreign-key ids replaced by names, booleans as Yes/No, for people."""
    out = []
    for row in result["rows"]:
        cells = []
        for column, value in zip(result["columns"], row):
            if value is None:
                cells.append("(none)" if column["role"] == "group" else None)
            elif "labels" in column:
                cells.append(column["labels"].get(str(value), f"#{value}"))
            elif column["type"] == "boolean":
                cells.append("Yes" if value else "No")
            else:
                cells.append(value)
        out.append(cells)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def widget_data(result: Mapping[str, Any], chart: str) -> tuple[str, dict[str, Any]]:
    """``(kind, data)``: a report result shaped as a dashboard widget of ``chart``."""
    columns, rows = result["columns"], display_rows(result)
    groups = [c for c in columns if c["role"] == "group"]
    measures = [c for c in columns if c["role"] == "measure"]
    note = "Only the first rows are shown." if result.get("truncated") else None
    if chart == "table":
        return "table", {"columns": [c["label"] for c in columns],
                         "rows": [[_fmt(v) if c["role"] == "measure" else v
                                   for c, v in zip(columns, row)] for row in rows],
                         **({"note": note} if note else {})}
    if not groups:
        value = rows[0][0] if rows else None
        return "kpi", {"value": _fmt(value), "number": value, "note": measures[0]["label"]}
    first = len(groups)
    if len(groups) == 2:  # pivot: one series per value of the second group
        labels = list(dict.fromkeys(str(r[0]) for r in rows))
        names = list(dict.fromkeys(str(r[1]) for r in rows))
        cells = {(str(r[0]), str(r[1])): r[2] for r in rows}
        series = [{"label": name, "values": [cells.get((x, name)) for x in labels]}
                  for name in names]
        y_label = measures[0]["label"]
    else:
        labels = [str(r[0]) for r in rows]
        series = [{"label": m["label"], "values": [r[first + i] for r in rows]}
                  for i, m in enumerate(measures)]
        y_label = measures[0]["label"] if len(measures) == 1 else "Value"
    data: dict[str, Any] = {"x_label": groups[0]["label"], "y_label": y_label}
    if note:
        data["note"] = note
    if chart in ("pie", "funnel"):
        items = [{"label": label, "value": value or 0, "display": _fmt(value)}
                 for label, value in zip(labels, series[0]["values"])]
        return chart, {**data, ("slices" if chart == "pie" else "steps"): items,
                       "unit": series[0]["label"]}
    return chart, {**data, "labels": labels, "series": series}
