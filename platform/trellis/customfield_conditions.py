"""Custom fields in segments and scoring: the ``custom_field`` condition type and
a customer feature per contact custom field.

A condition node ``{"type": "custom_field", "field": "cf_industry_size", "op":
"gt", "value": 10}`` matches contacts by one of their custom fields, with the
operators of :mod:`trellis.conditions` for the field's kind (text, number,
date; choices compare as text, a multi-choice field matches when any of its
values does, a yes/no field takes ``eq`` with true or false).  It compiles to
an ``EXISTS`` on the indexed value table, never a loop.  It reaches
:mod:`trellis.conditions` through the hook ``trellis_condition_types`` of the
core plugin, like a plugin's condition type.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, not_, select

from trellis import customfields
from trellis.specs import FeatureSpec

#: The condition kind of each field type.
KIND = {"text": "text", "choice": "text", "multi_choice": "text", "number": "number",
        "money": "number", "link": "number", "date": "date", "boolean": "boolean"}


def _contact_fields() -> list[customfields.FieldDef]:
    try:
        return customfields.definitions("contact")
    except Exception:  # noqa: BLE001 - no app context or schema: offer none
        return []


def check(node: dict[str, Any]) -> dict[str, list[str]]:
    from trellis.conditions import _check_compare

    name = node.get("field")
    defn = customfields.field("contact", name) if isinstance(name, str) else None
    if defn is None:
        offered = ", ".join(f.name for f in _contact_fields()) or "none yet"
        return {"field": [f"Must be a contact custom field (offered: {offered})."]}
    if KIND[defn.type] == "boolean":
        if node.get("op") not in ("eq", "ne", "is_empty", "is_not_empty"):
            return {"op": ["Must be one of: eq, ne, is_empty, is_not_empty."]}
        if node["op"] in ("eq", "ne") and not isinstance(node.get("value"), bool):
            return {"value": ["Must be true or false."]}
        return {}
    return _check_compare(KIND[defn.type], node)


def compile(node: dict[str, Any], contact_id: Any) -> Any:  # noqa: A001
    from trellis.conditions import _compare
    from trellis.models import CustomValue as V

    defn = customfields.field("contact", node["field"])
    column = getattr(V, defn.column)
    rows = select(V.record_id).where(V.field_id == defn.id, V.record_id == contact_id)
    op, value = node["op"], node.get("value")
    if op == "is_empty":
        return not_(exists(rows.where(column.is_not(None))))
    if op == "is_not_empty":
        return exists(rows.where(column.is_not(None)))
    if KIND[defn.type] == "boolean":
        matched = exists(rows.where(column == bool(value)))
        return matched if op == "eq" else not_(matched)
    if op in ("ne", "not_contains"):  # contacts without a value differ too
        positive = {"ne": "eq", "not_contains": "contains"}[op]
        return not_(exists(rows.where(_compare(column, KIND[defn.type], positive, value))))
    return exists(rows.where(_compare(column, KIND[defn.type], op, value)))


def condition_types() -> list[Any]:
    """The ``custom_field`` condition type, its field choices read now (the hook is
    asked each time the rule builder or a validation needs the types)."""
    from trellis.conditions import ConditionType

    choices = [{"name": f.name, "label": f.label, "kind": KIND[f.type]}
               for f in _contact_fields() if KIND[f.type] != "boolean"] + [
        {"name": f.name, "label": f.label, "kind": "boolean"}
        for f in _contact_fields() if KIND[f.type] == "boolean"]
    return [ConditionType(
        "custom_field", "Custom field", check, compile,
        params={"field": {"kind": "choice", "required": True, "choices": choices},
                "op": {"kind": "choice", "required": True}, "value": {"kind": "any"}},
        description="A contact's custom field (Admin > Custom fields) compared with a "
                    "value.")]


# ------------------------------------------------------------------ features

FEATURE_KIND = {"number": "number", "money": "number", "date": "date", "text": "text",
                "choice": "text"}


def features() -> list[FeatureSpec]:
    """A customer feature per number, money, date, text and choice custom field of
    contacts, named like the field (``cf_<key>``): scoring models, segments and
    reports read them like any plugin's feature."""
    from trellis.models import CustomValue as V

    out = []
    for defn in _contact_fields():
        kind = FEATURE_KIND.get(defn.type)
        if kind is None:
            continue

        def query(defn: customfields.FieldDef = defn) -> Any:
            return select(V.record_id.label("contact_id"),
                          getattr(V, defn.column).label("value")).where(V.field_id == defn.id)

        out.append(FeatureSpec(defn.name, defn.label, query, kind=kind,
                               description="Custom field"))
    return out
