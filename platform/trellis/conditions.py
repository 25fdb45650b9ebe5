"""Conditions on contacts: a JSON tree of rules compiled to ONE SQL query.

Marketing segments (and, later, automation rules) describe *which contacts*
as a tree of conditions combined with nested ``and`` / ``or`` / ``not``::

    {"and": [
        {"type": "tag", "tag": "VIP"},
        {"or": [
            {"type": "activity", "activity_type": "product.viewed",
             "within_days": 7, "payload": {"product_id": 5}},
            {"type": "purchase", "measure": "total", "op": "gte", "value": 100},
        ]},
        {"not": {"type": "field", "field": "email", "op": "is_empty"}},
    ]}

:func:`compile` turns the tree into a ``select(Contact.id)`` with one WHERE
clause (subqueries, never a loop over contacts), so a segment is evaluated by
the database in one statement.  :func:`validate` checks a tree and answers
``{path: [messages]}`` where the path names the offending node
(``and.1.or.0.value``), for a 400.

Every leaf is *null-safe* (never SQL ``NULL``), so ``not`` is the exact
complement of its operand: ``not (email contains "x")`` includes contacts
without an e-mail address.

Automation rules test records of any registered model with the same trees
(:func:`records`): inside :func:`for_model` the type ``record`` compares the
record's own fields and those of the records its foreign keys point at
(``amount``, ``account.industry``, ``stage.is_won``), and every other type
tests the record's contact (through the model's ``contact_field``).

Built-in condition types: ``field`` (a contact or its account's field compared
with a value), ``tag``, ``activity`` (of a type, within N days, optional subject
and payload match, at least N times), ``purchase`` (total spent, number of
orders, days since the last one, optionally for one product and within N days,
through :mod:`trellis.purchases`) and ``feature`` (any customer feature,
:mod:`trellis.features`: scores, lifetime value...).  Plugins add their own
with the hook ``trellis_condition_types`` (a list of :class:`ConditionType`).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

from sqlalchemy import Select, and_, exists, false, func, literal, not_, or_, select, true

#: Deepest nesting of groups accepted.
MAX_DEPTH = 12
#: Most leaves in one tree.
MAX_NODES = 200

GROUPS = ("and", "or", "not")
TEXT_OPS = ("eq", "ne", "contains", "not_contains", "starts_with", "ends_with", "in",
            "is_empty", "is_not_empty")
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "is_empty", "is_not_empty")
DATE_OPS = ("before", "after", "within_days", "older_than_days", "within_next_days", "is_empty",
            "is_not_empty")
#: Date operators whose value is a number of days from now.
DAY_OPS = ("within_days", "older_than_days", "within_next_days")
BOOL_OPS = ("is_true", "is_false")
COMPARE = {"eq": "__eq__", "ne": "__ne__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__",
           "lte": "__le__"}


class ConditionError(ValueError):
    """A condition tree is not valid; ``messages`` is ``{path: [messages]}``."""

    def __init__(self, messages: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items()))
        self.messages = messages


@dataclass(frozen=True)
class ConditionType:
    """A kind of leaf condition (returned by the hook ``trellis_condition_types``).

    ``check(node)`` returns ``{key: [messages]}`` for the node's own keys (empty
    when valid); ``compile(node, contact_id)`` returns a SQL boolean expression,
    never ``NULL``, true for the contacts matching (``contact_id`` is the
    outer query's contact id column: correlate subqueries with it).  ``params``
    describes the node's keys for the rule builder:
    ``{key: {"kind": "text"|"number"|"choice"|..., "choices": [...], "required": bool}}``.
    """

    name: str
    label: str
    check: Callable[[dict[str, Any]], dict[str, list[str]]]
    compile: Callable[[dict[str, Any], Any], Any]
    params: dict[str, Any] | None = None
    description: str = ""


# ------------------------------------------------------------------ helpers


_AS_OF: ContextVar[datetime | None] = ContextVar("trellis_conditions_as_of", default=None)


def _now() -> datetime:
    from trellis.db import utcnow

    return _AS_OF.get() or utcnow()


@contextmanager
def as_of(now: datetime | None) -> Iterator[None]:
    """Compile conditions relative to ``now`` ("within 7 days" of it) instead of the
    clock: journeys evaluate a step at the time of their tick, tests control time."""
    token = _AS_OF.set(now)
    try:
        yield
    finally:
        _AS_OF.reset(token)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _days(value: Any, maximum: int = 36500) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        return None
    return value


def _parse_when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _safe(expr: Any) -> Any:
    """``expr`` or false when it is NULL (so ``not`` complements exactly)."""
    return func.coalesce(expr, false())


# ------------------------------------------------------------------ field


def _field_columns() -> dict[str, tuple[Any, str, str]]:
    """``{name: (column, kind, label)}``: the contact fields conditions can compare."""
    from trellis.models import Account, Contact

    return {
        "first_name": (Contact.first_name, "text", "First name"),
        "last_name": (Contact.last_name, "text", "Last name"),
        "email": (Contact.email, "text", "E-mail"),
        "phone": (Contact.phone, "text", "Phone"),
        "title": (Contact.title, "text", "Job title"),
        "created_on": (Contact.created_on, "date", "Created"),
        "owner_id": (Contact.owner_id, "number", "Owner (user id)"),
        "account_id": (Contact.account_id, "number", "Account (id)"),
        "account.name": (Account.name, "text", "Company"),
        "account.industry": (Account.industry, "text", "Industry"),
        "account.country": (Account.country, "text", "Country"),
        "account.domain": (Account.domain, "text", "Company domain"),
    }


def _ops_of(kind: str) -> tuple[str, ...]:
    return {"text": TEXT_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "boolean": BOOL_OPS}[kind]


def _check_compare(kind: str, node: dict[str, Any], op_key: str = "op",
                   value_key: str = "value") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    op = node.get(op_key)
    ops = _ops_of(kind)
    if op not in ops:
        errors[op_key] = [f"Must be one of: {', '.join(ops)}."]
        return errors
    if op in ("is_empty", "is_not_empty"):
        return errors
    value = node.get(value_key)
    if kind == "text":
        if op == "in":
            if not isinstance(value, list) or not value or not all(
                    isinstance(v, str) for v in value):
                errors[value_key] = ["Must be a non-empty list of texts."]
        elif not isinstance(value, str) or (not value and op not in ("eq", "ne")):
            errors[value_key] = ["Must be a non-empty text."]
        elif len(value) > 255:
            errors[value_key] = ["Longer than 255 characters."]
    elif kind == "number":
        if _number(value) is None:
            errors[value_key] = ["Must be a number."]
    elif kind == "date":
        if op in DAY_OPS:
            if _days(value) is None:
                errors[value_key] = ["Must be a whole number of days from 0 to 36500."]
        elif _parse_when(value) is None:
            errors[value_key] = ["Must be a date (YYYY-MM-DD) or an ISO timestamp."]
    return errors


def _compare(column: Any, kind: str, op: str, value: Any) -> Any:
    """A null-safe comparison of ``column`` with ``value``."""
    if op == "is_true":
        return and_(column.is_not(None), column == true())
    if op == "is_false":
        return or_(column.is_(None), column == false())
    if op == "is_empty":
        if kind == "text":
            return or_(column.is_(None), func.trim(column) == "")
        return column.is_(None)
    if op == "is_not_empty":
        if kind == "text":
            return and_(column.is_not(None), func.trim(column) != "")
        return column.is_not(None)
    present = column.is_not(None)
    if kind == "text":
        low = func.lower(column)
        if op == "in":
            return and_(present, low.in_([v.lower() for v in value]))
        text = str(value).lower()
        pattern = _like_escape(text)
        if op == "eq":
            return and_(present, low == text)
        if op == "ne":
            return or_(column.is_(None), low != text)
        if op == "contains":
            return and_(present, low.like(f"%{pattern}%", escape="\\"))
        if op == "not_contains":
            return or_(column.is_(None), not_(low.like(f"%{pattern}%", escape="\\")))
        if op == "starts_with":
            return and_(present, low.like(f"{pattern}%", escape="\\"))
        if op == "ends_with":
            return and_(present, low.like(f"%{pattern}", escape="\\"))
    if kind == "number":
        number = _number(value)
        if op == "ne":
            return or_(column.is_(None), column != number)
        return and_(present, getattr(column, COMPARE[op])(number))
    if kind == "date":
        if op == "within_days":
            return and_(present, column >= _now() - timedelta(days=int(value)))
        if op == "older_than_days":
            return and_(present, column < _now() - timedelta(days=int(value)))
        if op == "within_next_days":  # due soon: renewals, contract ends, birthdays this year
            return and_(present, column >= _now(), column <= _now() + timedelta(days=int(value)))
        when = _parse_when(value)
        if op == "before":
            return and_(present, column < when)
        if op == "after":
            return and_(present, column >= when)
    raise ConditionError({"op": [f"Unsupported operator {op!r}."]})


def _check_field(node: dict[str, Any]) -> dict[str, list[str]]:
    columns = _field_columns()
    name = node.get("field")
    if name not in columns:
        return {"field": [f"Must be one of: {', '.join(columns)}."]}
    return _check_compare(columns[name][1], node)


def _compile_field(node: dict[str, Any], contact_id: Any) -> Any:
    from sqlalchemy.orm import aliased

    from trellis.models import Account, Contact

    column, kind, _ = _field_columns()[node["field"]]
    direct = contact_id is Contact.id
    person = Contact if direct else aliased(Contact)
    if node["field"].startswith("account."):
        # the company's value, NULL for a contact without one (compared null-safely)
        value = select(column).where(Account.id == person.account_id).scalar_subquery()
    else:
        value = getattr(person, column.key)
    expr = _compare(value, kind, node["op"], node.get("value"))
    if direct:
        return expr
    return exists(select(person.id).where(person.id == contact_id, expr))


# ------------------------------------------------------------------ tag


def _check_tag(node: dict[str, Any]) -> dict[str, list[str]]:
    tag = node.get("tag")
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 64:
        return {"tag": ["Must be a tag name (1 to 64 characters)."]}
    return {}


def _compile_tag(node: dict[str, Any], contact_id: Any) -> Any:
    from trellis.models import Tag, contact_tag

    return exists(select(contact_tag.c.contact_id)
                  .join(Tag, Tag.id == contact_tag.c.tag_id)
                  .where(contact_tag.c.contact_id == contact_id,
                         func.lower(Tag.name) == node["tag"].strip().lower()))


# ------------------------------------------------------------------ activity


def _check_activity(node: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    kind = node.get("activity_type")
    if not isinstance(kind, str) or not kind.strip() or len(kind) > 64:
        errors["activity_type"] = ["Must be an activity type such as product.viewed."]
    if "within_days" in node and node["within_days"] is not None \
            and _days(node["within_days"]) is None:
        errors["within_days"] = ["Must be a whole number of days from 0 to 36500."]
    if "min_count" in node and (isinstance(node["min_count"], bool) or not isinstance(
            node["min_count"], int) or not 1 <= node["min_count"] <= 1_000_000):
        errors["min_count"] = ["Must be a whole number from 1."]
    if "subject_contains" in node and (not isinstance(node["subject_contains"], str)
                                       or not node["subject_contains"]):
        errors["subject_contains"] = ["Must be a non-empty text."]
    payload = node.get("payload")
    if payload is not None:
        if not isinstance(payload, dict) or not payload or len(payload) > 10 or not all(
                isinstance(k, str) and k.isidentifier() for k in payload):
            errors["payload"] = ["Must be an object of up to 10 keys (names) to match."]
        elif not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                     for v in payload.values()):
            errors["payload"] = ["Values must be texts or whole numbers."]
    return errors


def activity_where(node: dict[str, Any], contact_id: Any, now: datetime | None = None) -> Any:
    """The WHERE clause of the activities an ``activity`` node counts (journeys reuse it)."""
    from trellis.models import Activity

    where = [Activity.contact_id == contact_id, Activity.type == node["activity_type"].strip()]
    if node.get("within_days") is not None:
        where.append(Activity.occurred_at >= (now or _now()) - timedelta(
            days=int(node["within_days"])))
    if node.get("subject_contains"):
        where.append(func.lower(Activity.subject).like(
            f"%{_like_escape(node['subject_contains'].lower())}%", escape="\\"))
    for key, value in (node.get("payload") or {}).items():
        where.append(Activity.payload[key].as_string() == str(value))
    return and_(*where)


def _compile_activity(node: dict[str, Any], contact_id: Any) -> Any:
    from trellis.models import Activity

    where = activity_where(node, contact_id)
    minimum = int(node.get("min_count") or 1)
    if minimum == 1:
        return exists(select(Activity.id).where(where))
    counted = select(func.count(Activity.id)).where(where).scalar_subquery()
    return counted >= minimum


# ------------------------------------------------------------------ purchase

PURCHASE_MEASURES = {"total": "number", "count": "number", "days_since_last": "number",
                     "last_at": "date"}


def _check_purchase(node: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    measure = node.get("measure")
    if measure not in PURCHASE_MEASURES:
        return {"measure": [f"Must be one of: {', '.join(PURCHASE_MEASURES)}."]}
    errors.update(_check_compare(PURCHASE_MEASURES[measure], node))
    if node.get("within_days") is not None and _days(node["within_days"]) is None:
        errors["within_days"] = ["Must be a whole number of days from 0 to 36500."]
    pid = node.get("product_id")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or pid < 1):
        errors["product_id"] = ["Must be a product id."]
    return errors


def _compile_purchase(node: dict[str, Any], contact_id: Any) -> Any:
    from trellis import purchases

    lines = purchases.lines().subquery()
    where = [lines.c.contact_id == contact_id]
    if node.get("within_days") is not None:
        where.append(lines.c.ordered_at >= _now() - timedelta(days=int(node["within_days"])))
    if node.get("product_id") is not None:
        where.append(lines.c.product_id == int(node["product_id"]))
    measure, op, value = node["measure"], node["op"], node.get("value")
    if measure == "total":
        agg = func.coalesce(select(func.sum(lines.c.amount)).where(*where)
                            .scalar_subquery(), 0)
        return _safe(_compare(agg, "number", op, value))
    if measure == "count":
        agg = select(func.count(func.distinct(lines.c.order_id))).where(*where)\
            .scalar_subquery()
        return _safe(_compare(agg, "number", op, value))
    last = select(func.max(lines.c.ordered_at)).where(*where).scalar_subquery()
    if measure == "last_at":
        return _safe(_compare(last, "date", op, value))
    from trellis.sqlfuncs import days_between

    return _safe(_compare(days_between(last, _now()), "number", op, value))


# ------------------------------------------------------------------ feature


def _check_feature(node: dict[str, Any]) -> dict[str, list[str]]:
    from trellis import features

    name = node.get("feature")
    spec = features.get(name) if isinstance(name, str) else None
    if spec is None:
        offered = ", ".join(s.name for s in features.all())
        return {"feature": [f"No enabled plugin offers this feature (offered: {offered})."]}
    return _check_compare(spec.kind, node)


def _compile_feature(node: dict[str, Any], contact_id: Any) -> Any:
    from trellis import features

    spec = features.get(node["feature"])
    sub = spec.query().subquery()
    op = node["op"]
    if op == "is_empty":
        return not_(exists(select(sub.c.contact_id).where(sub.c.contact_id == contact_id,
                                                          sub.c.value.is_not(None))))
    if op == "ne":  # contacts without a value differ too
        return not_(exists(select(sub.c.contact_id).where(
            sub.c.contact_id == contact_id, sub.c.value.is_not(None),
            _compare(sub.c.value, spec.kind, "eq", node.get("value")))))
    return exists(select(sub.c.contact_id).where(
        sub.c.contact_id == contact_id,
        _compare(sub.c.value, spec.kind, op, node.get("value"))))


BUILTIN: list[ConditionType] = [
    ConditionType("field", "Contact field", _check_field, _compile_field,
                  params={"field": {"kind": "choice", "required": True},
                          "op": {"kind": "choice", "required": True},
                          "value": {"kind": "any"}},
                  description="A contact's (or its company's) field compared with a value."),
    ConditionType("tag", "Has tag", _check_tag, _compile_tag,
                  params={"tag": {"kind": "text", "required": True}}),
    ConditionType("activity", "Activity", _check_activity, _compile_activity,
                  params={"activity_type": {"kind": "text", "required": True},
                          "within_days": {"kind": "number"}, "min_count": {"kind": "number"},
                          "subject_contains": {"kind": "text"}, "payload": {"kind": "object"}},
                  description="An activity of a type on the timeline, e.g. product.viewed "
                              "with payload {product_id: 5} within 7 days."),
    ConditionType("purchase", "Purchases", _check_purchase, _compile_purchase,
                  params={"measure": {"kind": "choice", "choices": list(PURCHASE_MEASURES),
                                      "required": True},
                          "op": {"kind": "choice", "required": True},
                          "value": {"kind": "any"}, "within_days": {"kind": "number"},
                          "product_id": {"kind": "number"}},
                  description="Total spent, number of orders, last purchase (all plugins' "
                              "purchase lines)."),
    ConditionType("feature", "Customer feature", _check_feature, _compile_feature,
                  params={"feature": {"kind": "choice", "required": True},
                          "op": {"kind": "choice", "required": True},
                          "value": {"kind": "any"}},
                  description="Any per-customer figure a plugin offers (scores, value...)."),
]


# ------------------------------------------------------------------ record (automation)

#: The registry model whose records a tree tests (:func:`for_model`), else ``None``.
_MODEL: ContextVar[str | None] = ContextVar("trellis_conditions_model", default=None)


@contextmanager
def for_model(model: str | None) -> Iterator[None]:
    """Validate and compile trees for records of registry model ``model``: the
    ``record`` type is offered, and the other types test the record's contact."""
    token = _MODEL.set(model)
    try:
        yield
    finally:
        _MODEL.reset(token)


def _kind_of(column: Any) -> str | None:
    from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, Numeric, String, Text

    kind = column.type
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, (Integer, Numeric, Float)):
        return "number"
    if isinstance(kind, (Date, DateTime)):
        return "date"
    if isinstance(kind, (String, Text)) and not isinstance(kind, JSON):
        return "text"
    return None


def record_fields(model: str) -> dict[str, tuple[Any, str, str]]:
    """``{name: (expression, kind, label)}``: the fields of ``model`` a ``record``
    condition compares — its columns, and ``<relation>.<column>`` of the registered
    record each foreign key points at (``account.industry``), as a correlated
    scalar subquery."""
    from trellis.extension import current_trellis

    registry = current_trellis().registry
    entry = registry.get(model)
    table = entry.model.__table__
    by_table = {e.model.__table__.name: e for e in registry}
    out: dict[str, tuple[Any, str, str]] = {}
    related = []
    for column in table.columns:
        kind = _kind_of(column)
        if kind is None or column.key.startswith("_"):
            continue
        attr = getattr(entry.model, column.key, None)
        if attr is None:
            continue
        out[column.key] = (attr, kind, column.key.replace("_", " ").capitalize())
        for fk in column.foreign_keys:
            target = by_table.get(fk.column.table.name)
            if target is not None and column.key.endswith("_id"):
                related.append((column.key[:-3], attr, target))
    for prefix, attr, target in related:
        for column in target.model.__table__.columns:
            kind = _kind_of(column)
            if kind is None or column.key in ("id",) or column.key.startswith("_"):
                continue
            value = (select(getattr(target.model, column.key))
                     .where(target.model.id == attr).scalar_subquery())
            out[f"{prefix}.{column.key}"] = (
                value, kind, f"{target.label}: {column.key.replace('_', ' ')}")
    return out


def _check_record(node: dict[str, Any]) -> dict[str, list[str]]:
    model = _MODEL.get()
    if model is None:
        return {"type": ["Record conditions apply only to automation rules."]}
    fields_ = record_fields(model)
    name = node.get("field")
    if name not in fields_:
        return {"field": [f"Must be one of: {', '.join(fields_)}."]}
    return _check_compare(fields_[name][1], node)


def _compile_record(node: dict[str, Any], contact_id: Any) -> Any:
    value, kind, _ = record_fields(_MODEL.get())[node["field"]]
    return _safe(_compare(value, kind, node["op"], node.get("value")))


RECORD = ConditionType(
    "record", "Record field", _check_record, _compile_record,
    params={"field": {"kind": "choice", "required": True},
            "op": {"kind": "choice", "required": True}, "value": {"kind": "any"}},
    description="A field of the record itself, or of a record it points at "
                "(its account, its stage...).")


def contact_column(model: str) -> Any:
    """The column holding the contact of a record of ``model``, or ``None``."""
    from trellis.extension import current_trellis

    entry = current_trellis().registry.get(model)
    if model == "contact":
        return entry.model.id
    field = entry.spec.contact_field
    return getattr(entry.model, field) if field else None


def records(tree: Any, model: str) -> Select:
    """``select(<model>.id)`` of the records of registry ``model`` matching ``tree``
    (``None``: every record), in one statement.  Raises :class:`ConditionError`."""
    from trellis.extension import current_trellis

    entry = current_trellis().registry.get(model)
    query = select(entry.model.id)
    if tree is None:
        return query
    with for_model(model):
        errors = validate(tree)
        if errors:
            raise ConditionError(errors)
        contact = contact_column(model)
        return query.where(expression(tree, contact if contact is not None
                                      else literal(None)))


# ------------------------------------------------------------------ registry


def available() -> dict[str, ConditionType]:
    """The condition types: the built-ins and those of the enabled plugins."""
    from trellis.extension import current_trellis

    types = {t.name: t for t in BUILTIN}
    if _MODEL.get() is not None:
        types[RECORD.name] = RECORD
    ext = current_trellis()
    for plugin, contributed in ext.plugins.call_each("trellis_condition_types"):
        if not ext.is_enabled(plugin):
            continue
        for spec in contributed or []:
            if spec.name in types:
                raise ValueError(f"plugin {plugin!r}: condition type {spec.name!r} exists")
            types[spec.name] = spec
    return types


def describe(model: str | None = None) -> list[dict[str, Any]]:
    """The condition types for the rule builder (names, labels, parameters, choices);
    with ``model``, for automation rules on its records (``record`` included)."""
    with for_model(model):
        return _describe(model)


def _describe(model: str | None) -> list[dict[str, Any]]:
    out = []
    for spec in available().values():
        if model is not None and spec.name != "record" and contact_column(model) is None:
            continue  # a record without a contact: only its own fields
        params = {k: dict(v) for k, v in (spec.params or {}).items()}
        if spec.name == "record":
            params["field"]["choices"] = [{"name": n, "label": lbl, "kind": k}
                                          for n, (_, k, lbl) in record_fields(model).items()]
        if spec.name == "field":
            params["field"]["choices"] = [{"name": n, "label": lbl, "kind": k}
                                          for n, (_, k, lbl) in _field_columns().items()]
        if spec.name == "feature":
            from trellis import features

            params["feature"]["choices"] = [{"name": f.name, "label": f.label, "kind": f.kind}
                                            for f in features.all()]
        out.append({"name": spec.name, "label": spec.label, "description": spec.description,
                    "params": params})
    return out


OPERATORS = {"text": TEXT_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "boolean": BOOL_OPS}


def builder_labels(model: str | None = None) -> dict[str, Any]:
    """The rule builder's words in the request's language, for the page to hand to
    ``conditions.js`` (``<script type="application/json" id="condition-labels">``):
    its buttons and placeholders, the operators and purchase measures, and the
    labels of the condition types and of the choices that come from the source
    (contact fields, plugins' features).  The API keeps answering in English; what
    users named themselves (custom fields) is shown as they wrote it."""
    from flask_babel import gettext

    from trellis.extension import current_trellis
    from trellis.i18n import translate

    registered = current_trellis().features
    with for_model(model):
        types = {**available(), RECORD.name: RECORD}  # the automation builder's too
    return {
        "ui": {
            "remove": gettext("remove"), "remove_group": gettext("remove group"),
            "add_condition": gettext("+ condition"), "add_group": gettext("+ group"),
            "all": gettext("ALL of (AND)"), "any": gettext("ANY of (OR)"),
            "not": gettext("NOT"), "group_operator": gettext("group operator"),
            "condition_type": gettext("condition type"), "operator": gettext("operator"),
            "value": gettext("value"), "tag": gettext("tag"),
            "activity_type": gettext("activity type, e.g. product.viewed"),
            "within_days": gettext("within days"), "product_id": gettext("product id"),
            "measure": gettext("measure"), "field": gettext("field"),
            "feature": gettext("feature"),
        },
        "ops": {
            "eq": gettext("equals"), "ne": gettext("does not equal"),
            "contains": gettext("contains"), "not_contains": gettext("does not contain"),
            "starts_with": gettext("starts with"), "ends_with": gettext("ends with"),
            "in": gettext("is one of"), "is_empty": gettext("is empty"),
            "is_not_empty": gettext("is not empty"), "gt": gettext("more than"),
            "gte": gettext("at least"), "lt": gettext("less than"), "lte": gettext("at most"),
            "before": gettext("before"), "after": gettext("after"),
            "within_days": gettext("within the last N days"),
            "older_than_days": gettext("more than N days ago"),
            "within_next_days": gettext("within the next N days"),
            "is_true": gettext("is true"), "is_false": gettext("is false"),
        },
        "measures": {"total": gettext("total spent"), "count": gettext("number of orders"),
                     "days_since_last": gettext("days since the last purchase"),
                     "last_at": gettext("last purchase")},
        "types": {name: translate(spec.label) for name, spec in types.items()},
        "choices": {  # by condition type
            "field": {name: translate(label) for name, (_c, _k, label) in _field_columns().items()},
            "feature": {name: translate(spec.label) for name, (_p, spec) in registered.items()},
        },
    }


# ------------------------------------------------------------------ validate / compile


def _walk(node: Any, path: str, depth: int, types: dict[str, ConditionType],
          errors: dict[str, list[str]], counter: list[int]) -> None:
    def key(name: str) -> str:
        return f"{path}.{name}" if path else name

    where = path or "(root)"
    if depth > MAX_DEPTH:
        errors[where] = [f"Nested deeper than {MAX_DEPTH} levels."]
        return
    if not isinstance(node, dict):
        errors[where] = ["Must be an object: a group (and/or/not) or a condition with a type."]
        return
    groups = [g for g in GROUPS if g in node]
    if groups:
        if len(node) != 1:
            errors[where] = ["A group has exactly one key: and, or or not."]
            return
        group = groups[0]
        operand = node[group]
        if group == "not":
            _walk(operand, key("not"), depth + 1, types, errors, counter)
            return
        if not isinstance(operand, list) or not operand:
            errors[key(group)] = ["Must be a non-empty list of conditions."]
            return
        for i, child in enumerate(operand):
            _walk(child, key(f"{group}.{i}"), depth + 1, types, errors, counter)
        return
    counter[0] += 1
    if counter[0] > MAX_NODES:
        errors[where] = [f"More than {MAX_NODES} conditions."]
        return
    kind = node.get("type")
    if kind not in types:
        errors[key("type")] = [f"Must be one of: {', '.join(types)} (or a group: and, or, "
                               f"not)."]
        return
    model = _MODEL.get()
    if model is not None and kind != "record" and contact_column(model) is None:
        errors[key("type")] = [f"{model} records have no contact: only record conditions "
                               f"apply."]
        return
    for name, messages in (types[kind].check(node) or {}).items():
        errors[key(name)] = list(messages)


def validate(tree: Any) -> dict[str, list[str]]:
    """``{path: [messages]}`` for what is wrong with ``tree`` (empty when valid).

    Paths name nodes by group and position: ``and.1.or.0.value``."""
    errors: dict[str, list[str]] = {}
    _walk(tree, "", 0, available(), errors, [0])
    return errors


def expression(tree: Any, contact_id: Any = None) -> Any:
    """The SQL boolean expression of a (valid) ``tree`` for the contact in
    ``contact_id`` (default ``Contact.id``).  Raises :class:`ConditionError`."""
    from trellis.models import Contact

    errors = validate(tree)
    if errors:
        raise ConditionError(errors)
    types = available()
    contact_id = Contact.id if contact_id is None else contact_id

    def build(node: dict[str, Any]) -> Any:
        if "and" in node:
            return and_(true(), *[build(c) for c in node["and"]])
        if "or" in node:
            return or_(false(), *[build(c) for c in node["or"]])
        if "not" in node:
            return not_(build(node["not"]))
        return types[node["type"]].compile(node, contact_id)

    return build(tree)


def compile(tree: Any) -> Select:  # noqa: A001 - read as ``conditions.compile``
    """``select(Contact.id)`` of the contacts matching ``tree``: one statement.

    Use it as a subquery (``Contact.id.in_(conditions.compile(tree))``) or run
    it.  Raises :class:`ConditionError` when the tree is not valid."""
    from trellis.models import Contact

    return select(Contact.id.label("contact_id")).where(expression(tree, Contact.id))


def matches(session: Any, tree: Any, contact_ids: list[int]) -> set[int]:
    """Which of ``contact_ids`` match ``tree`` (one query)."""
    from trellis.models import Contact

    if not contact_ids:
        return set()
    return set(session.scalars(compile(tree).where(Contact.id.in_(contact_ids))))


__all__ = ["ConditionError", "ConditionType", "available", "compile", "describe",
           "expression", "matches", "validate", "activity_where", "as_of", "for_model",
           "record_fields", "records", "contact_column"]
