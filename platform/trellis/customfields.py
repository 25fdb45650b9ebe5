"""Custom fields: fields an admin adds to any registered model at run time.

A definition (:class:`~trellis.models.CustomField`) names a registry model, a
stable ``key`` (the API and list column ``cf_<key>``; a label rename never
changes it), a label, a type and its rules (required, min/max, choices, the
target model of a link).  Values live in one typed table
(:class:`~trellis.models.CustomValue`): one row per (field, record) — per
chosen value for a multi-choice field — with the value in the column of its
type, each indexed on ``(field_id, value)`` and ``(field_id, record_id)``.
No DDL runs at run time.

* Filters become ``id IN (SELECT record_id FROM trellis_custom_value WHERE
  field_id = ? AND value_num > ?)`` and sorting a ``LEFT JOIN`` on
  ``(field_id, record_id)`` — both index-backed (:func:`record_condition`,
  :func:`order_by`).
* The values of a whole list page load in one query (:func:`values_for`).
* Definitions are read from the database and cached per process; every
  ``TRELLIS_CUSTOM_FIELDS_TTL`` seconds one small query checks whether they
  changed (:func:`definitions`), so a field added in one gunicorn worker
  shows in every worker without a restart.  Views and APIs pick them up per
  request (``apply_custom_fields``, called from :func:`sync_views`).
* Writes: :func:`stage` keeps the values of an ORM record until its commit,
  which writes them in the same transaction (so forms, the REST API and the
  import cannot half-write a record); :func:`write_values` writes at once,
  set-based.  Deleting a record through the ORM deletes its values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from flask import current_app, has_app_context
from marshmallow import ValidationError
from sqlalchemy import and_, delete, event as sa_event, false, func, insert, not_, select
from sqlalchemy.orm import aliased

TYPES = ("text", "number", "money", "date", "choice", "multi_choice", "boolean", "link")
TYPE_LABELS = {"text": "Text", "number": "Number", "money": "Money", "date": "Date",
               "choice": "Choice", "multi_choice": "Multiple choice", "boolean": "Yes/no",
               "link": "Link to a record"}
#: The value column of each type.
COLUMN = {"text": "value_text", "number": "value_num", "money": "value_num",
          "date": "value_date", "choice": "value_text", "multi_choice": "value_text",
          "boolean": "value_bool", "link": "value_ref"}
#: Prefix of a custom field's name in the API, forms, lists, exports and imports.
PREFIX = "cf_"
MAX_TEXT = 1000
#: Filter operators (the ``opr`` of an API filter) by type.
OPERATORS = {
    "text": ("eq", "neq", "ct", "sw", "empty"),
    "number": ("eq", "neq", "gt", "gte", "lt", "lte", "empty"),
    "money": ("eq", "neq", "gt", "gte", "lt", "lte", "empty"),
    "date": ("eq", "neq", "gt", "gte", "lt", "lte", "empty"),
    "choice": ("eq", "neq", "empty"),
    "multi_choice": ("eq", "neq", "empty"),
    "boolean": ("eq", "neq", "empty"),
    "link": ("eq", "neq", "empty"),
}
OPERATOR_LABELS = {"eq": "Equal to", "neq": "Not equal to", "ct": "Contains",
                   "sw": "Starts with", "gt": "Greater than", "gte": "At least",
                   "lt": "Less than", "lte": "At most", "empty": "Is empty"}
_STAGED = "trellis_custom_staged"


@dataclass(frozen=True)
class FieldDef:
    """A custom field definition as the code uses it (a frozen copy of the row)."""

    id: int
    model: str
    key: str
    label: str
    type: str
    required: bool = False
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    choices: tuple[str, ...] = ()
    target_model: str | None = None
    position: int = 0
    active: bool = True

    @property
    def name(self) -> str:
        """The field's name in the API, forms, lists and files: ``cf_<key>``."""
        return PREFIX + self.key

    @property
    def column(self) -> str:
        return COLUMN[self.type]

    @property
    def many(self) -> bool:
        return self.type == "multi_choice"

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "key": self.key, "name": self.name,
                "label": self.label, "type": self.type, "required": self.required,
                "min_value": _plain(self.min_value), "max_value": _plain(self.max_value),
                "choices": list(self.choices), "target_model": self.target_model,
                "position": self.position, "active": self.active}


def _tidy(number: Decimal) -> Decimal:
    """``12.500000`` (as the database returns it) as ``12.5``, ``60.000000`` as ``60``."""
    return Decimal(int(number)) if number == number.to_integral_value() else number.normalize()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# ------------------------------------------------------------------ definitions


class _Cache:
    def __init__(self) -> None:
        self.version: Any = None
        self.checked_at = float("-inf")
        self.fields: tuple[FieldDef, ...] = ()


def _cache() -> _Cache:
    ext = current_app.extensions["trellis"]
    cache = getattr(ext, "custom_fields_cache", None)
    if cache is None:
        cache = ext.custom_fields_cache = _Cache()
    return cache


def _read_version(conn: Any) -> Any:
    from trellis.models import CustomField

    return tuple(conn.execute(select(func.count(CustomField.id), func.max(CustomField.id),
                                     func.max(CustomField.updated_on))).one())


def _load(conn: Any) -> tuple[FieldDef, ...]:
    from trellis.models import CustomField

    rows = conn.execute(select(CustomField.__table__).order_by(
        CustomField.model, CustomField.position, CustomField.id)).mappings().all()
    return tuple(FieldDef(id=r["id"], model=r["model"], key=r["key"], label=r["label"],
                          type=r["type"], required=bool(r["required"]),
                          min_value=r["min_value"], max_value=r["max_value"],
                          choices=tuple(r["choices"] or ()), target_model=r["target_model"],
                          position=r["position"] or 0, active=bool(r["active"]))
                 for r in rows)


def all_fields() -> tuple[FieldDef, ...]:
    """Every definition (active or not), from the per-process cache: re-read when
    another process changed them (checked at most every ``TRELLIS_CUSTOM_FIELDS_TTL`` s)."""
    cache = _cache()
    ttl = current_app.config.get("TRELLIS_CUSTOM_FIELDS_TTL", 1.0)
    now = time.monotonic()
    if now - cache.checked_at > ttl:
        from sqlalchemy.exc import SQLAlchemyError

        from trellis.db import db

        try:
            with db.engine.connect() as conn:
                version = _read_version(conn)
                if version != cache.version:
                    cache.fields = _load(conn)
                    cache.version = version
        except SQLAlchemyError:  # no schema yet (`trellis init` has not run)
            cache.fields, cache.version = (), None
        cache.checked_at = now
    return cache.fields


def forget() -> None:
    """Re-read the definitions on next use (this process; others within the TTL)."""
    if has_app_context():
        _cache().checked_at = float("-inf")


def definitions(model: str, active_only: bool = True) -> list[FieldDef]:
    """The custom fields of registry model ``model``, in their order."""
    return [f for f in all_fields() if f.model == model and (f.active or not active_only)]


def field(model: str, name: str) -> FieldDef | None:
    """The active field ``cf_<key>`` (or ``<key>``) of ``model``."""
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    for defn in definitions(model):
        if defn.key == key:
            return defn
    return None


def model_name(model: type) -> str | None:
    """The registry name of a model class (``None`` if unregistered or without an
    integer ``id``: such models cannot have custom fields)."""
    entry = current_app.extensions["trellis"].registry.for_class(model)
    if entry is None:
        return None
    key = entry.model.__mapper__.primary_key
    if len(key) != 1 or key[0].name != "id":
        return None
    return entry.name


def for_class(model: type) -> list[FieldDef]:
    name = model_name(model)
    return definitions(name) if name else []


def version() -> Any:
    all_fields()
    return _cache().version


# ------------------------------------------------------------------ values in


def _number(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError("Not a valid number.")
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(str(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", "") if value.count(",") and
                             value.count(".") else value.strip())
        except InvalidOperation:
            raise ValidationError("Not a valid number.") from None
    else:
        raise ValidationError("Not a valid number.")
    if not number.is_finite() or abs(number) >= Decimal(10) ** 18:
        raise ValidationError("Not a valid number.")
    return number


TRUE = {"true", "yes", "y", "1", "on"}
FALSE = {"false", "no", "n", "0", "off"}


def parse(defn: FieldDef, value: Any) -> Any:
    """``value`` as stored for ``defn`` (``None`` clears it); raises
    :class:`marshmallow.ValidationError` naming the problem."""
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        if defn.required:
            raise ValidationError("Missing data for required field.")
        return [] if defn.many else None
    kind = defn.type
    if kind == "text":
        if not isinstance(value, str):
            raise ValidationError("Not a valid string.")
        if len(value) > MAX_TEXT:
            raise ValidationError(f"Longer than {MAX_TEXT} characters.")
        return value
    if kind in ("number", "money"):
        number = _number(value)
        if kind == "money":
            if number != number.quantize(Decimal("0.01")):
                raise ValidationError("At most 2 decimal places.")
            number = number.quantize(Decimal("0.01"))
        if defn.min_value is not None and number < defn.min_value:
            raise ValidationError(f"Must be at least {_plain(defn.min_value)}.")
        if defn.max_value is not None and number > defn.max_value:
            raise ValidationError(f"Must be at most {_plain(defn.max_value)}.")
        return number
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            raise ValidationError("Not a valid date (YYYY-MM-DD).") from None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise ValidationError("Not a valid boolean.")
    if kind == "choice":
        if not isinstance(value, str) or value not in defn.choices:
            raise ValidationError(f"Must be one of: {', '.join(defn.choices)}.")
        return value
    if kind == "multi_choice":
        items = [v.strip() for v in value.split(";")] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise ValidationError("Must be a list of choices.")
        bad = [v for v in items if v not in defn.choices]
        if bad:
            raise ValidationError(f"Not a choice: {', '.join(bad)}. "
                                  f"Must be among: {', '.join(defn.choices)}.")
        return sorted(set(items), key=list(defn.choices).index)
    if kind == "link":
        if isinstance(value, bool):
            raise ValidationError("Not a valid id.")
        try:
            record_id = int(value)
        except (TypeError, ValueError):
            raise ValidationError("Not a valid id.") from None
        _check_link(defn, record_id)
        return record_id
    raise ValidationError(f"Unknown field type {kind!r}.")


def _check_link(defn: FieldDef, record_id: int) -> None:
    """The linked record exists and the user may see it (record rules)."""
    from trellis import rules
    from trellis.db import db

    registry = current_app.extensions["trellis"].registry
    try:
        entry = registry.get(defn.target_model or "")
    except KeyError:
        raise ValidationError(f"The target model {defn.target_model!r} is not "
                              "installed.") from None
    key = entry.model.__mapper__.primary_key[0]
    if abs(record_id) > 2**63 - 1 or db.session.execute(rules.restrict(
            select(key).where(key == record_id).limit(1), entry.model)).first() is None:
        raise ValidationError(f"No {entry.label.lower()} with id {record_id}.")


def load(model: str, data: dict[str, Any], partial: bool = False
         ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Parse the ``cf_*`` keys of ``data`` for ``model``: ``(values, errors)``.

    ``partial`` (an update) checks only the fields given; otherwise a required
    field that is missing is an error.  Unknown ``cf_*`` keys are errors."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    fields = {f.name: f for f in definitions(model)}
    for name, raw in data.items():
        if not name.startswith(PREFIX):
            continue
        defn = fields.get(name)
        if defn is None:
            errors[name] = ["Unknown field."]
            continue
        try:
            values[name] = parse(defn, raw)
        except ValidationError as exc:
            errors[name] = [str(m) for m in exc.messages] if isinstance(
                exc.messages, list) else [str(exc.messages)]
    if not partial:
        for name, defn in fields.items():
            if defn.required and name not in data:
                errors[name] = ["Missing data for required field."]
    return values, errors


def split(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` as ``(regular keys, cf_* keys)``."""
    return ({k: v for k, v in data.items() if not k.startswith(PREFIX)},
            {k: v for k, v in data.items() if k.startswith(PREFIX)})


# ------------------------------------------------------------------ values out


def values_for(session: Any, model: str, ids: Iterable[int],
               fields: list[FieldDef] | None = None) -> dict[int, dict[str, Any]]:
    """``{record id: {cf_<key>: value}}`` for records of ``model``: one query for
    all of them (every active field present, ``None``/``[]`` when unset)."""
    from trellis.models import CustomValue as V

    fields = definitions(model) if fields is None else fields
    ids = [i for i in ids if i is not None]
    out = {i: {f.name: ([] if f.many else None) for f in fields} for i in ids}
    if not fields or not ids:
        return out
    by_id = {f.id: f for f in fields}
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        rows = session.execute(select(V.field_id, V.record_id, V.value_text, V.value_num,
                                      V.value_date, V.value_bool, V.value_ref)
                               .where(V.field_id.in_(list(by_id)), V.record_id.in_(chunk))
                               .order_by(V.id))
        for row in rows:
            defn = by_id[row.field_id]
            value = getattr(row, defn.column)
            if defn.type == "money" and value is not None:
                value = Decimal(value).quantize(Decimal("0.01"))
            elif defn.type == "number" and value is not None:
                value = _tidy(Decimal(value))
            record = out[row.record_id]
            if defn.many:
                record[defn.name].append(value)
            else:
                record[defn.name] = value
    for values in out.values():
        for f in fields:
            if f.many and values[f.name]:
                values[f.name].sort(key=lambda v, f=f: f.choices.index(v)
                                    if v in f.choices else len(f.choices))
    return out


def jsonable(defn: FieldDef, value: Any) -> Any:
    """A value as the REST API returns it (money and numbers as numbers)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def display(defn: FieldDef, value: Any) -> str:
    """A value as list pages and exports show it."""
    if value is None or value == []:
        return ""
    if defn.many:
        return "; ".join(value)
    if defn.type == "boolean":
        return "Yes" if value else "No"
    if defn.type == "money":
        return f"{value:,.2f}"
    return str(_plain(value))


# ------------------------------------------------------------------ writing


def write_values(session: Any, model: str, records: dict[int, dict[str, Any]]) -> None:
    """Replace the given fields' values of the given records, set-based: one
    ``DELETE`` per field and one multi-row ``INSERT``.  Values must be parsed
    (:func:`parse`, :func:`load`); fields not named are left alone."""
    from trellis.models import CustomValue as V

    fields = {f.name: f for f in definitions(model)}
    touched: dict[int, list[int]] = {}
    rows: list[dict[str, Any]] = []
    for record_id, values in records.items():
        for name, value in values.items():
            defn = fields.get(name)
            if defn is None:
                continue
            touched.setdefault(defn.id, []).append(record_id)
            for item in (value if defn.many else [value]):
                if item is not None:
                    rows.append({"field_id": defn.id, "record_id": record_id,
                                 "value_text": None, "value_num": None, "value_date": None,
                                 "value_bool": None, "value_ref": None, defn.column: item})
    for field_id, ids in touched.items():
        for start in range(0, len(ids), 5000):
            session.execute(delete(V).where(V.field_id == field_id,
                                            V.record_id.in_(ids[start:start + 5000])))
    if rows:
        session.execute(insert(V), rows)


def delete_values(session: Any, model: str, ids: Iterable[int]) -> None:
    """Delete every custom value of these records of ``model`` (the record is gone)."""
    from trellis.models import CustomField, CustomValue as V

    ids = list(ids)
    fields = select(CustomField.id).where(CustomField.model == model).scalar_subquery()
    for start in range(0, len(ids), 5000):
        session.execute(delete(V).where(V.field_id.in_(fields),
                                        V.record_id.in_(ids[start:start + 5000])))


def stage(session: Any, obj: Any, values: dict[str, Any]) -> None:
    """Write ``values`` (parsed ``cf_*`` values) of ORM record ``obj`` when its
    session commits, in the same transaction (a new record has its id by then)."""
    if values:
        from sqlalchemy import inspect

        new = not inspect(obj).persistent
        session.info.setdefault(_STAGED, []).append((obj, dict(values), new))


def attach(obj: Any, values: dict[str, Any]) -> None:
    """Put loaded values on a record as plain attributes (``obj.cf_<key>``), as
    FAB's lists, record pages and forms read them."""
    for name, value in values.items():
        obj.__dict__[name] = value
    obj.__dict__["_trellis_custom_loaded"] = dict(values)


def attached_changes(obj: Any) -> dict[str, Any]:
    """The ``cf_*`` attributes a form set on ``obj`` that differ from the loaded ones."""
    loaded = obj.__dict__.get("_trellis_custom_loaded", {})
    return {k: v for k, v in obj.__dict__.items()
            if k.startswith(PREFIX) and (k not in loaded or loaded[k] != v)}


def load_page(session: Any, model: type, items: list[Any]) -> None:
    """Attach the custom values of a page of records (one query)."""
    name = model_name(model)
    fields = definitions(name) if name else []
    if not fields or not items:
        return
    values = values_for(session, name, [getattr(i, "id", None) for i in items], fields)
    for item in items:
        if getattr(item, "id", None) in values:
            attach(item, values[item.id])


def _install_listeners() -> None:
    from trellis.session import TrellisSession

    @sa_event.listens_for(TrellisSession, "before_commit")
    def _write_staged(session: Any) -> None:
        staged = session.info.pop(_STAGED, None)
        if not staged or not has_app_context():
            return
        session.flush()
        by_model: dict[str, dict[int, dict[str, Any]]] = {}
        created: set[tuple[str, int]] = set()
        for obj, values, new in staged:
            name = model_name(type(obj))
            if name is None or getattr(obj, "id", None) is None:
                continue
            by_model.setdefault(name, {}).setdefault(obj.id, {}).update(values)
            if new:
                created.add((name, obj.id))
        for name, records in by_model.items():
            _audit_changes(session, name, records, {i for m, i in created if m == name})
            write_values(session, name, records)

    @sa_event.listens_for(TrellisSession, "after_soft_rollback")
    def _drop_staged(session: Any, previous: Any) -> None:
        if not session.in_transaction():
            session.info.pop(_STAGED, None)

    @sa_event.listens_for(TrellisSession, "after_flush")
    def _deleted(session: Any, flush_context: Any) -> None:
        if not session.deleted or not has_app_context() or \
                current_app.extensions.get("trellis") is None:
            return
        by_model: dict[str, list[int]] = {}
        for obj in session.deleted:
            name = model_name(type(obj))
            if name and definitions(name, active_only=False):
                by_model.setdefault(name, []).append(obj.id)
        for name, ids in by_model.items():
            delete_values(session, name, ids)


def _audit_changes(session: Any, model: str, records: dict[int, dict[str, Any]],
                   created: set[int]) -> None:
    """One audit entry per record whose custom values a form or the API changed
    (``created`` for the values a new record was created with)."""
    from trellis import audit

    entry = current_app.extensions["trellis"].registry.get(model)
    if not entry.spec.audited:
        return
    fields = {f.name: f for f in definitions(model)}
    before = values_for(session, model, list(records), list(fields.values()))
    for record_id, values in records.items():
        changes = {name: {"old": audit.jsonable(before.get(record_id, {}).get(name)),
                          "new": audit.jsonable(value)}
                   for name, value in values.items()
                   if name in fields and before.get(record_id, {}).get(name) != value}
        if changes:
            audit.log(session, "created" if record_id in created else "updated", model,
                      record_id, changes)


_install_listeners()


# ------------------------------------------------------------------ filtering, sorting


def value_condition(defn: FieldDef, op: str, value: Any) -> Any:
    """The condition on a :class:`CustomValue` row for ``op`` (not ``neq``/``empty``,
    which are complements: see :func:`record_condition`)."""
    from trellis.models import CustomValue as V

    column = getattr(V, defn.column)
    if op == "ct":
        return func.lower(column).contains(str(value).lower(), autoescape=True)
    if op == "sw":
        return func.lower(column).startswith(str(value).lower(), autoescape=True)
    parsed = filter_value(defn, op, value)
    if defn.type == "text" and op == "eq":
        return func.lower(column) == parsed.lower()
    return {"eq": column.__eq__, "gt": column.__gt__, "gte": column.__ge__,
            "lt": column.__lt__, "lte": column.__le__}[op](parsed)


def filter_value(defn: FieldDef, op: str, value: Any) -> Any:
    """A filter's value parsed for the field (ranges and ``required`` not applied)."""
    loose = FieldDef(defn.id, defn.model, defn.key, defn.label, defn.type,
                     choices=defn.choices, target_model=defn.target_model)
    if defn.type == "multi_choice":
        loose = FieldDef(defn.id, defn.model, defn.key, defn.label, "choice",
                         choices=defn.choices)
    if defn.type == "link":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValidationError("Not a valid id.") from None
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError("A value is required.")
    return parse(loose, value)


def check_filter(defn: FieldDef, op: str, value: Any) -> None:
    """Raise :class:`ValidationError` when ``op``/``value`` do not fit the field."""
    if op not in OPERATORS[defn.type]:
        raise ValidationError(f"Operator {op!r} is not allowed on {defn.name}; use one of: "
                              f"{', '.join(OPERATORS[defn.type])}.")
    if op == "empty":
        if not isinstance(value, bool) and str(value).lower() not in TRUE | FALSE:
            raise ValidationError("Use true or false.")
        return
    if op in ("ct", "sw"):
        if not isinstance(value, str) or not value:
            raise ValidationError("A value is required.")
        return
    filter_value(defn, op, value)


def record_condition(record_id: Any, defn: FieldDef, op: str, value: Any) -> Any:
    """``record_id IN (SELECT record_id FROM trellis_custom_value WHERE field_id = ?
    AND <value condition>)`` — or its complement for ``neq``/``empty`` (records
    without a value are not equal to anything, and are empty)."""
    from trellis.models import CustomValue as V

    rows = select(V.record_id).where(V.field_id == defn.id)
    if op == "empty":
        wanted = value is True or str(value).lower() in TRUE
        present = record_id.in_(rows)
        return not_(present) if wanted else present
    if op == "neq":
        return not_(record_id.in_(rows.where(value_condition(defn, "eq", value))))
    return record_id.in_(rows.where(value_condition(defn, op, value)))


def order_by(query: Any, model: type, defn: FieldDef, direction: str) -> Any:
    """``query`` sorted by the field: a ``LEFT JOIN`` on ``(field_id, record_id)``
    (a multi-choice field sorts by its first value), empty values last."""
    from sqlalchemy import asc, desc, nulls_last

    from trellis.models import CustomValue as V

    order = desc if direction == "desc" else asc
    if defn.many:
        column = getattr(V, defn.column)
        expr = select(func.min(column)).where(V.field_id == defn.id,
                                              V.record_id == model.id).scalar_subquery()
    else:
        alias = aliased(V)
        query = query.outerjoin(alias, and_(alias.field_id == defn.id,
                                            alias.record_id == model.id))
        expr = getattr(alias, defn.column)
    return query.order_by(nulls_last(order(expr)), order(model.id))


def never() -> Any:
    return false()


def merge_values(session: Any, model: str, winner_id: int, loser_ids: list[int]) -> None:
    """``trellis_before_merge``: a field the winner has no value for takes the first
    loser's values (in ``loser_ids`` order); the losers' other values are dropped.
    Journaled through :mod:`trellis.merge`, so undoing the merge restores them."""
    from trellis import merge
    from trellis.models import CustomField, CustomValue as V

    fields = select(CustomField.id).where(CustomField.model == model)
    present = session.execute(select(V.field_id, V.record_id).distinct().where(
        V.field_id.in_(fields), V.record_id.in_([winner_id, *loser_ids]))).all()
    holders: dict[int, set[int]] = {}
    for field_id, record_id in present:
        holders.setdefault(field_id, set()).add(record_id)
    table = V.__table__
    for field_id, records in holders.items():
        losers = [i for i in loser_ids if i in records]
        if not losers:
            continue
        if winner_id not in records:
            merge.update_rows(session, table, table.c.record_id,
                              (table.c.field_id == field_id) & (table.c.record_id == losers[0]),
                              winner_id)
            losers = losers[1:]
        if losers:
            merge.drop_rows(session, table, (table.c.field_id == field_id)
                            & table.c.record_id.in_(losers))
