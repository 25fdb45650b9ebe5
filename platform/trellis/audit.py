"""The audit log and record events, both taken from the same flush.

Every insert, update and delete of a registered, audited model made through
``db.session`` writes an :class:`~trellis.models.AuditEntry` in the same
transaction (so a rolled-back change leaves no entry) and queues the matching
``<model>.created|updated|deleted`` event for after the commit.
"""

from __future__ import annotations

import decimal
import enum
from datetime import date, datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event as sa_event, inspect, insert

from trellis.context import current_actor
from trellis.events import record_event
from trellis.session import PENDING_EVENTS, TrellisSession
from trellis.models import AuditEntry


def jsonable(value: Any) -> Any:
    """A JSON-safe form of a column value."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _secret(attr: Any) -> bool:
    """An encrypted column: its plaintext never enters the audit log or events."""
    from trellis.crypto import Encrypted

    return any(isinstance(col.type, Encrypted) for col in attr.columns)


def _value(attr: Any, value: Any) -> Any:
    from trellis.crypto import REDACTED

    if value is not None and _secret(attr):
        return REDACTED
    return jsonable(value)


def _columns(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    return {attr.key: _value(attr, getattr(obj, attr.key)) for attr in state.mapper.column_attrs}


def _diff(obj: Any) -> dict[str, dict[str, Any]]:
    state = inspect(obj)
    changes: dict[str, dict[str, Any]] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if old != new:
            changes[attr.key] = {"old": _value(attr, old), "new": _value(attr, new)}
    return changes


def _record_id(obj: Any) -> Any:
    # Not inspect(obj).identity: in after_flush a new row has its key but no identity yet.
    key = inspect(obj).mapper.primary_key_from_instance(obj)
    return key[0] if len(key) == 1 else "/".join(map(str, key))


@sa_event.listens_for(TrellisSession, "after_flush")
def _after_flush(session: Any, flush_context: Any) -> None:
    if not has_app_context():
        return
    ext = current_app.extensions.get("trellis")
    if ext is None:
        return
    actor = current_actor()
    rows: list[dict[str, Any]] = []
    events = session.info.setdefault(PENDING_EVENTS, [])
    for action, objects in (("created", session.new), ("updated", session.dirty),
                            ("deleted", session.deleted)):
        for obj in objects:
            entry = ext.registry.for_class(type(obj))
            if entry is None or not entry.spec.audited:
                security = _security_change(obj, action)
                if security is not None:
                    rows.append({"occurred_at": None,
                                 "user_id": actor.user_id if actor else None,
                                 "username": actor.username if actor else None,
                                 "source": actor.source if actor else "system",
                                 "action": action, **security})
                continue
            if action == "created":
                changes = {k: {"old": None, "new": v} for k, v in _columns(obj).items()
                           if v is not None}
            elif action == "deleted":
                changes = {k: {"old": v, "new": None} for k, v in _columns(obj).items()
                           if v is not None}
            else:
                changes = _diff(obj)
                if not changes:
                    continue
            record_id = _record_id(obj)
            rows.append({
                "occurred_at": None,
                "user_id": actor.user_id if actor else None,
                "username": actor.username if actor else None,
                "source": actor.source if actor else "system",
                "action": action,
                "model": entry.name,
                "record_id": str(record_id),
                "changes": changes,
            })
            events.append(record_event(f"{entry.name}.{action}", entry.name, record_id,
                                       changes, entry.plugin))
    if rows:
        from trellis.db import utcnow

        now = utcnow()
        for row in rows:
            row["occurred_at"] = now
        session.connection().execute(insert(AuditEntry.__table__), rows)


def _names(items: Any) -> list[str]:
    return sorted(str(item) for item in items)


def _security_change(obj: Any, action: str) -> dict[str, Any] | None:
    """The audit entry of a change to a user or a role (FAB's security models, not in
    the registry): who got or lost which role or permission, activation, e-mail,
    name — and that a password changed, never the hash."""
    sm = getattr(current_app, "appbuilder", None) and current_app.appbuilder.sm
    if sm is None or not isinstance(obj, (sm.user_model, sm.role_model)):
        return None
    state = inspect(obj)
    model = "user" if isinstance(obj, sm.user_model) else "role"
    watched = (("username", "email", "first_name", "last_name", "active", "roles", "password")
               if model == "user" else ("name", "permissions"))
    changes: dict[str, Any] = {}
    for key in watched:
        if key not in state.attrs:
            continue
        hist = state.attrs[key].history
        if action == "created":
            value = getattr(obj, key)
            if key == "password" or value in (None, [], ""):
                continue
            changes[key] = {"added": _names(value)} if key in ("roles", "permissions") \
                else {"old": None, "new": jsonable(value)}
        elif action == "updated" and hist.has_changes():
            if key == "password":
                changes[key] = "changed"
            elif key in ("roles", "permissions"):
                changes[key] = {"added": _names(hist.added), "removed": _names(hist.deleted)}
            else:
                changes[key] = {"old": jsonable(hist.deleted[0] if hist.deleted else None),
                                "new": jsonable(hist.added[0] if hist.added else None)}
    if action == "updated" and not changes:
        return None
    if action == "deleted":
        changes = {"name": getattr(obj, "username", None) or getattr(obj, "name", None)}
    return {"model": model, "record_id": str(_record_id(obj)), "changes": changes}


@sa_event.listens_for(TrellisSession, "before_flush")
def _append_only(session: Any, flush_context: Any, instances: Any) -> None:
    """Audit entries are only ever added through the application: the ORM refuses
    to change or delete one (erasure redacts them with :func:`redact`)."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry):
            raise AuditImmutable("the audit log is append-only")


class AuditImmutable(Exception):
    """Raised on an attempt to change or delete an audit entry through the ORM."""


def log(session: Any, action: str, model: str, record_id: Any,
        changes: dict[str, Any] | None = None) -> None:
    """Write one audit entry by hand, in the caller's transaction, for what is not
    a plain insert/update/delete: an export, an erasure, a merge, a login."""
    from trellis.db import utcnow

    actor = current_actor()
    session.execute(insert(AuditEntry.__table__), [{
        "occurred_at": utcnow(),
        "user_id": actor.user_id if actor else None,
        "username": actor.username if actor else None,
        "source": actor.source if actor else "system",
        "action": action[:16],
        "model": model,
        "record_id": str(record_id),
        "changes": changes,
    }])


def redact(session: Any, model: str, record_ids: list[Any]) -> int:
    """Replace the recorded values of some records' audit entries by a marker
    (personal-data erasure); returns how many entries were redacted."""
    from sqlalchemy import update

    if not record_ids:
        return 0
    result = session.execute(
        update(AuditEntry).where(AuditEntry.model == model,
                                 AuditEntry.record_id.in_([str(r) for r in record_ids]))
        .values(changes={"redacted": "personal data erased"}),
        execution_options={"synchronize_session": False})
    return result.rowcount or 0
