"""Actions: things automation does to records, contributed by plugins.

A journey step or an automation rule says *what* to do by naming an action
(``core.add_tag``, ``sales.create_task``...) with parameters; the plugin that
offers it (``trellis_actions``, :class:`~trellis.specs.ActionSpec`) does it,
set-based, for a batch of records of one registry model::

    actions.run(db.session, "core.add_tag", "contact", [3, 4, 5], {"tag": "VIP"})

Parameters are validated by the action's marshmallow schema first
(:class:`ActionError` with field messages, nothing done).  :func:`run` works
inside the caller's transaction and does not commit.  The core's own actions
are below; records of models with a ``contact_field`` reach their contact
through :func:`contact_ids` (tag the contact of a won deal).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import insert, select

from trellis.specs import ActionSpec


class ActionError(ValueError):
    """An action cannot run: unknown, not for this model, or bad parameters."""

    def __init__(self, messages: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items()))
        self.messages = messages


def _ext() -> Any:
    from trellis.extension import current_trellis

    return current_trellis()


def available(model: str | None = None) -> list[ActionSpec]:
    """The enabled plugins' actions (those that apply to ``model`` when given)."""
    ext = _ext()
    return [spec for _, (plugin, spec) in sorted(ext.actions.items())
            if ext.is_enabled(plugin)
            and (model is None or "*" in spec.models or model in spec.models)]


def get(name: str) -> ActionSpec | None:
    """The action ``name`` if an enabled plugin offers it."""
    ext = _ext()
    found = ext.actions.get(name)
    return found[1] if found and ext.is_enabled(found[0]) else None


def validate_params(name: str, model: str, params: Any) -> dict[str, Any]:
    """The action's parameters, loaded by its schema; :class:`ActionError` when not."""
    spec = get(name)
    if spec is None:
        raise ActionError({"action": [f"No enabled plugin offers the action {name!r}."]})
    if "*" not in spec.models and model not in spec.models:
        raise ActionError({"action": [f"{name} does not apply to {model} records "
                                      f"(only {', '.join(spec.models)})."]})
    if not isinstance(params, dict):
        raise ActionError({"params": ["Must be an object."]})
    try:
        return spec.schema().load(params)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"params": exc.messages}
        raise ActionError({k: v if isinstance(v, list) else [str(v)]
                           for k, v in messages.items()}) from exc


def run(session: Any, name: str, model: str, ids: list[int], params: Any) -> Any:
    """Validate ``params`` and run action ``name`` on records ``ids`` of ``model``.

    Runs in the caller's transaction (nothing is committed here); returns the
    action's summary.
    """
    loaded = validate_params(name, model, params)
    spec = get(name)
    assert spec is not None
    return spec.run(session, model, sorted({int(i) for i in ids}), loaded)


def contact_ids(session: Any, model: str, ids: list[int]) -> list[int]:
    """The contacts of records ``ids`` of registry model ``model`` (through its
    ``contact_field``); the ids themselves for contacts; ``[]`` when it has none."""
    entry = _ext().registry.get(model)
    if model == "contact":
        return sorted(set(session.scalars(select(entry.model.id).where(entry.model.id.in_(ids)))))
    field = entry.spec.contact_field
    if not field or not ids:
        return []
    column = getattr(entry.model, field)
    return sorted(set(session.scalars(
        select(column).where(entry.model.id.in_(ids), column.is_not(None)))))


def record_data(session: Any, model: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """``{id: fields}`` of records ``ids`` of ``model`` as its registry schema dumps
    them, JSON-safe (one query): what action templates see as ``record``."""
    import json

    entry = _ext().registry.get(model)
    schema = entry.schema()
    rows = session.scalars(select(entry.model).where(entry.model.id.in_(ids))) if ids else []
    return {r.id: json.loads(json.dumps(schema.dump(r), default=str)) for r in rows}


def _owner_ids(session: Any, model: str, ids: list[int]) -> list[int]:
    entry = _ext().registry.get(model)
    field = entry.spec.owner_field
    if not field or not ids:
        return []
    column = getattr(entry.model, field)
    return sorted(set(session.scalars(
        select(column).where(entry.model.id.in_(ids), column.is_not(None)))))


# ------------------------------------------------------------------ the core's actions


def account_ids(session: Any, model: str, ids: list[int]) -> list[int]:
    """The accounts of records ``ids`` of registry model ``model``: the ids for
    accounts, the record's ``account_id`` column when it has one, else its
    contact's account."""
    from trellis.models import Contact

    entry = _ext().registry.get(model)
    if not ids:
        return []
    if model == "account":
        column = entry.model.id
    elif "account_id" in entry.model.__table__.columns:
        column = entry.model.account_id
    else:
        people = contact_ids(session, model, ids)
        return sorted(set(session.scalars(select(Contact.account_id).where(
            Contact.id.in_(people), Contact.account_id.is_not(None))))) if people else []
    return sorted(set(session.scalars(
        select(column).where(entry.model.id.in_(ids), column.is_not(None)))))


def _tag_targets(session: Any, model: str, ids: list[int], on: str) -> list[int]:
    """The contacts a tag goes on: the records' contacts, or every contact of the
    records' accounts (``on="account"``)."""
    from trellis.models import Contact

    if on == "account":
        accounts = account_ids(session, model, ids)
        return sorted(set(session.scalars(select(Contact.id).where(
            Contact.account_id.in_(accounts))))) if accounts else []
    return contact_ids(session, model, ids)


class TagParams(Schema):
    tag = fields.String(required=True, validate=validate.Length(min=1, max=64))
    on = fields.String(load_default="contact", validate=validate.OneOf(
        ("contact", "account"), error="Must be contact or account."),
        metadata={"description": "contact: the record's contact; account: every contact "
                                 "of the record's account"})


def add_tag(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict[str, int]:
    """Tag the records' contacts, or every contact of their accounts (the tag is
    created when it does not exist)."""
    from trellis.models import Tag, contact_tag

    targets = _tag_targets(session, model, ids, params["on"])
    name = params["tag"].strip()
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        tag = Tag(name=name)
        session.add(tag)
        session.flush()
    if not targets:
        return {"tagged": 0}
    already = select(contact_tag.c.contact_id).where(contact_tag.c.tag_id == tag.id,
                                                     contact_tag.c.contact_id.in_(targets))
    new = sorted(set(targets) - set(session.scalars(already)))
    if new:
        session.execute(insert(contact_tag), [{"contact_id": c, "tag_id": tag.id} for c in new])
    return {"tagged": len(new)}


def remove_tag(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict[str, int]:
    """Remove a tag from the records' contacts (or their accounts' contacts)."""
    from trellis.models import Tag, contact_tag

    targets = _tag_targets(session, model, ids, params["on"])
    tag_id = session.scalar(select(Tag.id).where(Tag.name == params["tag"].strip()))
    if tag_id is None or not targets:
        return {"untagged": 0}
    result = session.execute(contact_tag.delete().where(
        contact_tag.c.tag_id == tag_id, contact_tag.c.contact_id.in_(targets)))
    return {"untagged": result.rowcount or 0}


class UpdateFieldParams(Schema):
    field = fields.String(required=True, validate=validate.Length(min=1, max=64))
    value = fields.Raw(required=True, allow_none=True)


def update_field(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict[str, int]:
    """Set one field of the records, validated by the model's schema.

    Goes through the ORM, so the model's rules, the audit log and record events
    apply exactly as for an edit in the UI (a broken rule raises
    :class:`~trellis.validation.RecordInvalid` at flush).
    """
    entry = _ext().registry.get(model)
    schema = entry.schema()
    name = params["field"]
    field = schema.fields.get(name)
    if field is None or field.dump_only or name in ("id",):
        raise ActionError({"field": [f"{entry.label} has no field {name!r} that can be set."]})
    try:
        value = schema.load({name: params["value"]}, partial=True)[name]
    except ValidationError as exc:
        raise ActionError({"value": [f"{name}: {' '.join(map(str, exc.messages.get(name, exc.messages)))}"]}) from exc
    records = session.scalars(select(entry.model).where(entry.model.id.in_(ids))).all()
    for record in records:
        setattr(record, name, value)
    session.flush()
    return {"updated": len(records)}


class AssignParams(Schema):
    owner_id = fields.Integer(required=True, metadata={"description": "the new owner (user id)"})


def assign(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict[str, int]:
    """Give the records to another owner (the model's ``owner_field``), through the
    ORM so the model's rules, the audit log and record events apply."""
    from flask_appbuilder.security.sqla.models import User

    entry = _ext().registry.get(model)
    field = entry.spec.owner_field
    if not field:
        raise ActionError({"action": [f"{entry.label} records have no owner."]})
    if session.get(User, params["owner_id"]) is None:
        raise ActionError({"owner_id": [f"No user with id {params['owner_id']}."]})
    records = session.scalars(select(entry.model).where(
        entry.model.id.in_(ids), getattr(entry.model, field).is_distinct_from(
            params["owner_id"]))).all()
    for record in records:
        setattr(record, field, params["owner_id"])
    session.flush()
    return {"assigned": len(records)}


class NotifyParams(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=255))
    body = fields.String(load_default=None, allow_none=True)
    user_id = fields.Integer(load_default=None, allow_none=True,
                             metadata={"description": "empty: each record's owner"})


def notify_owner(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict[str, int]:
    """Notify a user, or the records' owners, in-app (and by e-mail if they want it)."""
    from trellis.notifications import notify

    users = [params["user_id"]] if params["user_id"] else _owner_ids(session, model, ids)
    added = [notify(session, user_id, params["subject"], body=params["body"], plugin="core")
             for user_id in users]
    return {"notified": len([n for n in added if n is not None])}


def core_actions() -> list[ActionSpec]:
    """The core's actions (``trellis_actions`` of the core plugin)."""
    return [
        ActionSpec("core.add_tag", "Add a tag", TagParams, add_tag, models=("*",),
                   description="Tags the record's contact."),
        ActionSpec("core.remove_tag", "Remove a tag", TagParams, remove_tag, models=("*",)),
        ActionSpec("core.assign", "Assign to a user", AssignParams, assign,
                   models=("*",), description="Makes a user the owner of the record "
                                              "(models with an owner)."),
        ActionSpec("core.update_field", "Update a field", UpdateFieldParams, update_field,
                   models=("*",)),
        ActionSpec("core.notify", "Send a notification", NotifyParams, notify_owner,
                   models=("*",), description="To a user, or to each record's owner."),
    ]
