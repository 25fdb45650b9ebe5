"""Merging duplicate records (contacts, accounts, …) into one, and undoing it.

The core cannot know every plugin's tables, so a merge works from the
SQLAlchemy metadata: every foreign key that references the merged model's
table (``trellis_contact.id`` for contacts — deals, orders, tasks, tickets,
activities, notes, scores, web events…) is re-pointed from the losers to the
winner **set-based**, one ``UPDATE … SET fk = winner WHERE fk = loser`` per
column, in the caller's transaction.  Every change is journaled
(:class:`~trellis.models.MergeRecord`, :class:`~trellis.models.MergeChange`),
so :func:`undo` puts every row back where it was and re-creates the losers.

Order of a merge:

1. ``trellis_before_merge(session, model, winner_id, loser_ids)`` of every
   enabled plugin: a plugin resolves what a plain re-point would break, such as
   a unique "one score row per contact" (keep the better row, drop the other).
   It should change rows through :func:`drop_rows` / :func:`update_rows`, which
   journal what they do, so undo restores it.
2. Per loser, rows that would break a unique constraint or unique index
   containing the foreign key (the winner already has that tag) are deleted
   (journaled with their content), then the foreign key is re-pointed.
3. The winner takes the chosen field values (an ORM update: the model's rules,
   the audit log and the ``<model>.updated`` event apply).
4. The losers are deleted (their rows journaled), an audit entry ``merged``
   is written for the winner and ``deleted`` entries for each loser, and the
   named event ``<model>.merged`` fires after the commit.

:func:`merge` with ``dry_run=True`` reports the same plan (field changes, rows
per table and column to re-point, conflicting rows to drop) without writing.
"""

from __future__ import annotations

import contextvars
import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable

from flask import current_app
from sqlalchemy import (
    Date,
    DateTime,
    Numeric,
    PrimaryKeyConstraint,
    UniqueConstraint,
    and_,
    delete,
    exists,
    insert,
    inspect,
    select,
    tuple_,
    update,
)

from trellis.audit import jsonable
from trellis.db import Model, utcnow
from trellis.models import AuditEntry, MergeChange, MergeRecord

log = logging.getLogger(__name__)

__all__ = ["MergeError", "merge", "undo", "references", "drop_rows", "update_rows", "row_from_json"]

_current: contextvars.ContextVar[MergeRecord | None] = contextvars.ContextVar(
    "trellis_merge", default=None)


class MergeError(ValueError):
    """The merge cannot be done; ``messages`` is ``{field: [message]}``."""

    def __init__(self, messages: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items()))
        self.messages = messages


# ------------------------------------------------------------------ the schema


def _existing_tables(session: Any) -> set[str]:
    return set(inspect(session.connection()).get_table_names())


def references(session: Any, table: Any) -> list[tuple[Any, Any]]:
    """``(table, column)`` of every foreign key to ``table``'s primary key, in
    tables that exist in the database (the metadata may hold tables of plugins
    this site does not have)."""
    present = _existing_tables(session)
    out = []
    for other in Model.metadata.sorted_tables:
        if other.name not in present or other.name in ("trellis_merge", "trellis_merge_change"):
            continue
        for fk in other.foreign_keys:
            if fk.column.table is table and fk.column.primary_key:
                out.append((other, fk.parent))
    return sorted(out, key=lambda tc: (tc[0].name, tc[1].name))


def _unique_groups(table: Any, column: Any) -> list[list[Any]]:
    """The other columns of each unique constraint / unique index / primary key of
    ``table`` that contains ``column`` (``[]`` for a unique on the column alone)."""
    groups = []
    for constraint in table.constraints:
        if isinstance(constraint, (UniqueConstraint, PrimaryKeyConstraint)):
            cols = list(constraint.columns)
            if column in cols and not (isinstance(constraint, PrimaryKeyConstraint)
                                       and cols == [column]):
                groups.append([c for c in cols if c is not column])
    for index in table.indexes:
        cols = [c for c in index.expressions if hasattr(c, "table")]
        if index.unique and column in cols and len(cols) == len(index.expressions):
            groups.append([c for c in cols if c is not column])
    if column.unique:
        groups.append([])
    return groups


def _conflicts(table: Any, column: Any, loser: int, winner: int) -> Any:
    """Rows of the loser that would duplicate a winner's row under a unique rule."""
    conditions = []
    for others in _unique_groups(table, column):
        twin = table.alias("twin")
        match = [twin.c[column.name] == winner,
                 *[twin.c[c.name] == table.c[c.name] for c in others]]
        conditions.append(exists().where(and_(*match)))
    if not conditions:
        return None
    from sqlalchemy import or_

    return and_(column == loser, or_(*conditions))


def _key(table: Any) -> list[Any]:
    return list(table.primary_key.columns)


def _row_json(row: Any) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in row._mapping.items()}


def row_from_json(table: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A journaled row back in Python types, for re-inserting it."""
    out = {}
    for name, value in data.items():
        column = table.c.get(name)
        if column is None:
            continue
        if value is not None:
            if isinstance(column.type, DateTime) and isinstance(value, str):
                value = datetime.fromisoformat(value)
            elif isinstance(column.type, Date) and isinstance(value, str):
                value = date.fromisoformat(value)
            elif isinstance(column.type, Numeric) and isinstance(value, str):
                value = Decimal(value)
        out[name] = value
    return out


# ------------------------------------------------------------------ journaled writes


def _journal(session: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(MergeChange.__table__), rows)


def drop_rows(session: Any, table: Any, where: Any) -> int:
    """Delete ``table`` rows matching ``where`` inside a merge, journaling their
    content so :func:`undo` re-inserts them.  For ``trellis_before_merge``."""
    record = _current.get()
    rows = session.execute(select(table).where(where)).all()
    if not rows:
        return 0
    if record is not None:
        key = _key(table)
        _journal(session, [{"merge_id": record.id, "action": "delete", "table_name": table.name,
                            "column_name": None,
                            "row_key": [jsonable(r._mapping[c.name]) for c in key],
                            "row_data": _row_json(r)} for r in rows])
    session.execute(delete(table).where(where))
    return len(rows)


def update_rows(session: Any, table: Any, column: Any, where: Any, value: Any) -> int:
    """Set ``column`` to ``value`` on the rows matching ``where`` inside a merge,
    journaling each old value so :func:`undo` restores it."""
    record = _current.get()
    key = _key(table)
    rows = session.execute(select(*key, column).where(where)).all()
    if not rows:
        return 0
    if record is not None:
        _journal(session, [{"merge_id": record.id, "action": "update", "table_name": table.name,
                            "column_name": column.name,
                            "row_key": [jsonable(v) for v in r[:-1]],
                            "old_value": jsonable(r[-1]), "new_value": jsonable(value)}
                           for r in rows])
    session.execute(update(table).where(where).values({column.name: value}))
    return len(rows)


# ------------------------------------------------------------------ merge


def _entry(model: str) -> Any:
    registry = current_app.extensions["trellis"].registry
    try:
        return registry.get(model)
    except KeyError:
        raise MergeError({"model": [f"Unknown model {model!r}."]}) from None


def _check(session: Any, entry: Any, winner_id: int, loser_ids: list[int]) -> list[int]:
    losers = sorted({int(i) for i in loser_ids} - {int(winner_id)})
    if not losers:
        raise MergeError({"loser_ids": ["Name at least one record to merge into the winner."]})
    key = entry.model.__mapper__.primary_key[0]
    found = set(session.scalars(select(key).where(key.in_([winner_id, *losers]))))
    missing = [i for i in [winner_id, *losers] if i not in found]
    if missing:
        raise MergeError({"loser_ids" if winner_id in found else "winner_id":
                          [f"No {entry.label.lower()} with id {i}." for i in missing]})
    return losers


def _field_changes(entry: Any, winner: Any, values: dict[str, Any]) -> dict[str, Any]:
    columns = {c.key for c in entry.model.__mapper__.column_attrs}
    pk = {c.key for c in entry.model.__mapper__.primary_key}
    bad = [f for f in values if f not in columns or f in pk]
    if bad:
        raise MergeError({f: ["Not a field that can be merged."] for f in bad})
    return {f: {"old": jsonable(getattr(winner, f)), "new": jsonable(v)}
            for f, v in values.items() if getattr(winner, f) != v}


def merge(session: Any, model: str, winner_id: int, loser_ids: Iterable[int],
          values: dict[str, Any] | None = None, *, dry_run: bool = False) -> dict[str, Any]:
    """Merge ``loser_ids`` into ``winner_id`` (records of registry model ``model``).

    ``values`` are the winner's field values after the merge (typically some
    taken from a loser).  Returns ``{"merge_id", "winner_id", "loser_ids",
    "fields", "references": [{"table", "column", "rows"}], "conflicts": [...]}``;
    with ``dry_run`` nothing is written and ``merge_id`` is ``None``.  The caller
    commits (or rolls back).  Raises :class:`MergeError` for bad input and
    :class:`trellis.validation.RecordInvalid` when the winner's new values break
    a model rule.
    """
    from trellis.context import current_actor
    from trellis.events import emit

    entry = _entry(model)
    losers = _check(session, entry, winner_id, list(loser_ids))
    table = entry.model.__table__
    winner = session.get(entry.model, winner_id)
    fields = _field_changes(entry, winner, dict(values or {}))
    refs = references(session, table)
    plan_refs, plan_conflicts = [], []
    for ref_table, column in refs:
        count = session.scalar(select(_count()).select_from(ref_table)
                               .where(column.in_(losers)))
        if count:
            plan_refs.append({"table": ref_table.name, "column": column.name, "rows": count})
        for loser in losers:
            clash = _conflicts(ref_table, column, loser, winner_id)
            n = session.scalar(select(_count()).select_from(ref_table).where(clash)) \
                if clash is not None else 0
            if n:
                plan_conflicts.append({"table": ref_table.name, "column": column.name,
                                       "loser_id": loser, "rows": n})
    result: dict[str, Any] = {"merge_id": None, "model": model, "winner_id": winner_id,
                              "loser_ids": losers, "fields": fields, "references": plan_refs,
                              "conflicts": plan_conflicts}
    if dry_run:
        return result

    actor = current_actor()
    loser_rows = [_row_json(r) for r in session.execute(
        select(table).where(table.c.id.in_(losers)).order_by(table.c.id))]
    record = MergeRecord(model=model, winner_id=winner_id, loser_ids=losers,
                         winner_changes=fields, loser_rows=loser_rows,
                         user_id=actor.user_id if actor else None)
    session.add(record)
    session.flush()
    token = _current.set(record)
    try:
        ext = current_app.extensions["trellis"]
        for plugin in list(ext.plugins.loaded()):
            if plugin.ok and ext.is_enabled(plugin.name):
                ext.plugins.call_one(plugin.name, "trellis_before_merge", session=session,
                                     model=model, winner_id=winner_id, loser_ids=list(losers))
        for ref_table, column in refs:
            key = _key(ref_table)
            for loser in losers:
                clash = _conflicts(ref_table, column, loser, winner_id)
                if clash is not None:
                    drop_rows(session, ref_table, clash)
                rows = session.execute(select(*key).where(column == loser)).all()
                if not rows:
                    continue
                # the key as it is after the re-point (the column may be part of it)
                _journal(session, [{"merge_id": record.id, "action": "repoint",
                                    "table_name": ref_table.name, "column_name": column.name,
                                    "row_key": [winner_id if c is column else jsonable(v)
                                                for c, v in zip(key, r)],
                                    "old_value": loser, "new_value": winner_id} for r in rows])
                session.execute(update(ref_table).where(column == loser)
                                .values({column.name: winner_id}))
    finally:
        _current.reset(token)
    session.expire_all()
    winner = session.get(entry.model, winner_id)
    for name, change in fields.items():
        setattr(winner, name, (values or {})[name])
    session.flush()  # the winner's rules, audit row and updated event
    session.execute(delete(table).where(table.c.id.in_(losers)))
    _audit(session, entry, record, actor)
    session.expire_all()
    emit(f"{model}.merged", {"merge_id": record.id, "winner_id": winner_id,
                             "loser_ids": losers}, plugin=entry.plugin)
    result["merge_id"] = record.id
    return result


def _count() -> Any:
    from sqlalchemy import func

    return func.count()


def _audit(session: Any, entry: Any, record: MergeRecord, actor: Any, undo: bool = False) -> None:
    now = utcnow()
    base = {"occurred_at": now, "user_id": actor.user_id if actor else None,
            "username": actor.username if actor else None,
            "source": actor.source if actor else "system", "model": entry.name}
    rows = [{**base, "action": "unmerged" if undo else "merged",
             "record_id": str(record.winner_id),
             "changes": {"merge_id": {"old": None, "new": record.id},
                         "loser_ids": {"old": None, "new": record.loser_ids},
                         **(record.winner_changes or {})}}]
    for row in record.loser_rows:
        rows.append({**base, "action": "created" if undo else "deleted",
                     "record_id": str(row["id"]),
                     "changes": {"merged_into": {"old": None, "new": record.winner_id},
                                 "merge_id": {"old": None, "new": record.id}}})
    session.execute(insert(AuditEntry.__table__), rows)


# ------------------------------------------------------------------ undo


def undo(session: Any, merge_id: int) -> dict[str, Any]:
    """Undo merge ``merge_id``: re-create the losers, put every re-pointed row back,
    re-insert dropped rows, restore updated values and the winner's fields.

    Refused when the merge was undone already or when a later merge into the
    same winner is still in place (undo that first).  The caller commits.
    """
    from trellis.context import current_actor
    from trellis.events import emit

    record = session.get(MergeRecord, merge_id)
    if record is None:
        raise MergeError({"merge_id": [f"No merge with id {merge_id}."]})
    if record.undone_on is not None:
        raise MergeError({"merge_id": ["This merge has been undone already."]})
    later = session.scalar(select(MergeRecord.id).where(
        MergeRecord.model == record.model, MergeRecord.id > record.id,
        MergeRecord.undone_on.is_(None),
        MergeRecord.winner_id.in_([record.winner_id, *record.loser_ids])))
    if later is not None:
        raise MergeError({"merge_id": [f"Merge {later} into the same record came later; "
                                       "undo it first."]})
    entry = _entry(record.model)
    table = entry.model.__table__
    tables = {t.name: t for t in Model.metadata.sorted_tables}
    if session.get(entry.model, record.winner_id) is None:
        raise MergeError({"merge_id": ["The surviving record has been deleted since."]})
    # 1. the losers come back first: re-pointed rows will reference them again
    session.execute(insert(table), [row_from_json(table, row) for row in record.loser_rows])
    changes = session.scalars(select(MergeChange).where(MergeChange.merge_id == record.id)
                              .order_by(MergeChange.id.desc())).all()
    restored = {"repoint": 0, "delete": 0, "update": 0}
    # 2. foreign keys back to the losers, grouped per (table, column, loser)
    groups: dict[tuple[str, str, Any], list[list[Any]]] = {}
    for change in changes:
        if change.action == "repoint":
            groups.setdefault((change.table_name, change.column_name, change.old_value),
                              []).append(change.row_key)
    for (table_name, column_name, old), keys in groups.items():
        ref = tables.get(table_name)
        if ref is None:
            continue
        key = _key(ref)
        column = ref.c[column_name]
        for chunk in _chunks(keys, 500):
            match = key[0].in_([k[0] for k in chunk]) if len(key) == 1 else \
                tuple_(*key).in_([tuple(k) for k in chunk])
            res = session.execute(update(ref).where(match, column == record.winner_id)
                                  .values({column_name: old}))
            restored["repoint"] += res.rowcount or 0
    # 3. rows dropped for conflicts (or by a plugin) come back; updates are reverted
    for change in reversed(changes):
        ref = tables.get(change.table_name)
        if ref is None:
            continue
        if change.action == "delete":
            session.execute(insert(ref).values(row_from_json(ref, change.row_data or {})))
            restored["delete"] += 1
        elif change.action == "update":
            key = _key(ref)
            session.execute(update(ref).where(*[c == v for c, v in zip(key, change.row_key)])
                            .values({change.column_name: row_from_json(
                                ref, {change.column_name: change.old_value})[
                                    change.column_name]}))
            restored["update"] += 1
    # 4. the winner's own fields
    winner = session.get(entry.model, record.winner_id)
    old = row_from_json(table, {f: c["old"] for f, c in (record.winner_changes or {}).items()})
    for name, value in old.items():
        setattr(winner, name, value)
    session.flush()
    record.undone_on = utcnow()
    actor = current_actor()
    _audit(session, entry, record, actor, undo=True)
    session.flush()
    session.expire_all()
    emit(f"{record.model}.unmerged", {"merge_id": record.id, "winner_id": record.winner_id,
                                      "loser_ids": list(record.loser_ids)},
         plugin=entry.plugin)
    return {"merge_id": record.id, "winner_id": record.winner_id,
            "loser_ids": list(record.loser_ids), "restored": restored}


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
