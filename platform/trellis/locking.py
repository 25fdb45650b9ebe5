"""Optimistic locking: a save based on an outdated copy of a record is refused,
with what changed since, instead of silently overwriting someone else's work.

A record's **version** is read when it is shown and sent back with the save:

* for an audited model, ``a<id>``: the id of the record's latest audit entry,
  so a conflict can say exactly what changed, when and by whom (the entries
  after that id);
* otherwise ``h<hash>``: a hash of the record's column values.

The REST API returns it as the ``ETag`` of ``GET /api/v1/<model>/<id>`` and
checks an ``If-Match`` header on ``PUT`` (409 with the changes when it no
longer matches; no header, no check).  Web edit forms carry it in a hidden
``_version`` field and always check: the form comes back with the user's
input, the changes listed, and the new version, so saving again overwrites
knowingly.  The row is locked (``SELECT … FOR UPDATE`` on PostgreSQL) while
comparing, so two saves cannot both pass.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, inspect, select

from trellis.audit import jsonable
from trellis.models import AuditEntry

#: Most changes listed in a conflict.
MAX_CHANGES = 20


def _entry(record: Any) -> Any:
    from flask import current_app

    return current_app.extensions["trellis"].registry.for_class(type(record))


def _record_id(record: Any) -> str:
    key = inspect(record).mapper.primary_key_from_instance(record)
    return str(key[0]) if len(key) == 1 else "/".join(map(str, key))


def version(session: Any, record: Any) -> str:
    """The record's current version token."""
    entry = _entry(record)
    if entry is not None and entry.spec.audited:
        last = session.scalar(select(func.max(AuditEntry.id)).where(
            AuditEntry.model == entry.name, AuditEntry.record_id == _record_id(record)))
        return f"a{last or 0}"
    # the stored row, not the object (a form may already have changed it)
    mapper = inspect(record).mapper
    key = mapper.primary_key_from_instance(record)
    attrs = list(mapper.column_attrs)
    with session.no_autoflush:
        row = session.execute(select(*[a.columns[0] for a in attrs]).where(
            *[c == v for c, v in zip(mapper.primary_key, key)])).one_or_none()
    values = {a.key: jsonable(v) for a, v in zip(attrs, row or ())}
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode())
    return "h" + digest.hexdigest()[:24]


def lock(session: Any, record: Any) -> None:
    """Lock the record's row until the transaction ends (PostgreSQL; SQLite
    serialises writers anyway)."""
    mapper = inspect(record).mapper
    key = mapper.primary_key_from_instance(record)
    cols = mapper.primary_key
    session.execute(select(*cols).where(*[c == v for c, v in zip(cols, key)])
                    .with_for_update())


def changes_since(session: Any, record: Any, token: str) -> list[dict[str, Any]]:
    """What happened to the record after ``token`` (audited models only)."""
    entry = _entry(record)
    if entry is None or not entry.spec.audited or not token.startswith("a"):
        return []
    try:
        since = int(token[1:])
    except ValueError:
        return []
    rows = session.scalars(select(AuditEntry).where(
        AuditEntry.model == entry.name, AuditEntry.record_id == _record_id(record),
        AuditEntry.id > since).order_by(AuditEntry.id).limit(MAX_CHANGES)).all()
    return [{"at": jsonable(r.occurred_at), "by": r.username or "system",
             "action": r.action, "changes": r.changes or {}} for r in rows]


def conflict(session: Any, record: Any, token: str | None) -> dict[str, Any] | None:
    """``None`` when ``token`` is the record's current version (or absent), else a
    description of the conflict: a message, the current version and the changes."""
    if not token:
        return None
    lock(session, record)
    current = version(session, record)
    if token == current:
        return None
    changes = changes_since(session, record, token)
    fields = sorted({f for c in changes for f in c["changes"]})
    who = sorted({c["by"] for c in changes})
    if changes:
        message = (f"This record was changed by {', '.join(who)} since you opened it "
                   f"({', '.join(fields) or 'no field values'}). Review the changes and "
                   f"save again to overwrite them.")
    else:
        message = ("This record was changed since you opened it. Reload it, or save "
                   "again to overwrite the changes.")
    return {"message": message, "current_version": current, "changes": changes}


def describe(changes: list[dict[str, Any]]) -> list[str]:
    """One line per changed field, for a web page."""
    lines = []
    for change in changes:
        for field, values in change["changes"].items():
            if isinstance(values, dict) and "old" in values:
                lines.append(f"{change['by']} changed {field} from {values['old']!r} to "
                             f"{values['new']!r} at {str(change['at'])[:19]}")
    return lines
