"""The session class of ``db.session``: it delivers events and jobs after commit.

Jobs and events queued during a transaction are written to the outbox
(:mod:`trellis.outbox`) inside that transaction, just before it commits, and
delivered once ``commit()`` has returned successfully (SQLAlchemy forbids SQL
inside its ``after_commit`` event, yet handlers and in-process jobs need the
database).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from flask import current_app, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event as sa_event

log = logging.getLogger(__name__)

PENDING_EVENTS = "trellis_pending_events"
PENDING_JOBS = "trellis_pending_jobs"
#: A handler that commits and so fires events again may nest this deep.
MAX_DISPATCH_DEPTH = 8


#: How deep dispatch is nested in this thread/task (handlers that commit, or
#: in-process jobs that fire events, dispatch again from inside a dispatch).
_depth: ContextVar[int] = ContextVar("trellis_dispatch_depth", default=0)
_MARKS = "trellis_savepoint_marks"


class TrellisSession(FlaskSession):
    """Flask-SQLAlchemy's session: what a transaction queued (jobs, events) is written
    to the outbox in that transaction, and delivered once it has committed."""

    def commit(self) -> None:
        items: list[Any] = []
        if has_app_context() and current_app.extensions.get("trellis") is not None:
            if self.info.get(PENDING_EVENTS) or self.info.get(PENDING_JOBS) or \
                    self.new or self.dirty or self.deleted:
                self.flush()  # record events of the last changes are queued by the flush
            events = self.info.pop(PENDING_EVENTS, [])
            jobs = self.info.pop(PENDING_JOBS, [])
            if events or jobs:
                items = _prepare(events, jobs, self)
        super().commit()
        if items:
            with delivering():
                from trellis import outbox

                outbox.deliver(items)


def _prepare(events: list[Any], jobs: list[Any], session: Any | None) -> list[Any]:
    """Outbox rows for ``events`` and ``jobs``, written on ``session`` (inside its
    transaction) or, with ``session=None``, in a transaction of their own.
    Refused past :data:`MAX_DISPATCH_DEPTH` (a handler that keeps triggering itself)."""
    from trellis import outbox

    ext = current_app.extensions["trellis"]
    depth = _depth.get()
    if depth >= MAX_DISPATCH_DEPTH:
        log.error("event dispatch nested %d deep (a handler keeps triggering itself?); "
                  "dropping %s", depth, [e.name for e in events] + [j[0] for j in jobs])
        return []
    items = outbox.items_for(ext, events, jobs)
    if session is not None:
        return outbox.write(session, items)
    from trellis.db import db

    with db.engine.begin() as conn:
        return outbox.write(conn, items)


class delivering:  # noqa: N801 - used like a function: ``with delivering():``
    """Count one more level of nested delivery (handlers and in-process jobs that
    commit deliver again from inside a delivery)."""

    def __enter__(self) -> None:
        self._token = _depth.set(_depth.get() + 1)

    def __exit__(self, *exc: Any) -> None:
        _depth.reset(self._token)


def dispatch(events: list[Any], jobs: list[Any]) -> None:
    """Send work queued outside any transaction: through the outbox at once."""
    if current_app.extensions.get("trellis") is None:
        return
    items = _prepare(events, jobs, None)
    if items:
        from trellis import outbox

        with delivering():
            outbox.deliver(items)


_WROTE = "trellis_wrote"


def has_pending_writes(session: Any) -> bool:
    """Whether the session holds changes not yet committed (flushed or not).

    Not ``in_transaction()``: merely reading an expired attribute begins a
    transaction, and work queued then would wait for a commit that never comes.
    """
    return bool(session.info.get(_WROTE) or session.new or session.dirty or session.deleted)


@sa_event.listens_for(TrellisSession, "after_flush")
def _wrote(session: Any, flush_context: Any) -> None:
    session.info[_WROTE] = True


@sa_event.listens_for(TrellisSession, "do_orm_execute")
def _wrote_set_based(state: Any) -> None:
    """``session.execute(insert(...)/update(...)/delete(...))`` writes without a flush:
    it counts too, so events queued after it wait for the same commit (delivered
    earlier they would act on data not yet committed, and on SQLite the outbox's
    own connection would wait for the lock this transaction holds)."""
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@sa_event.listens_for(TrellisSession, "after_commit")
def _committed(session: Any) -> None:
    if session.in_nested_transaction():
        return  # SQLAlchemy calls this for a released SAVEPOINT too: still uncommitted
    session.info.pop(_WROTE, None)


@sa_event.listens_for(TrellisSession, "after_transaction_create")
def _mark_savepoint(session: Any, transaction: Any) -> None:
    """Remember how much was pending when a SAVEPOINT began."""
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = (
            len(session.info.get(PENDING_EVENTS, ())), len(session.info.get(PENDING_JOBS, ())))


@sa_event.listens_for(TrellisSession, "after_soft_rollback")
def _discard_pending(session: Any, previous_transaction: Any) -> None:
    """A rolled-back SAVEPOINT drops what was queued inside it; a rolled-back
    transaction drops everything."""
    mark = session.info.get(_MARKS, {}).pop(id(previous_transaction), None)
    if previous_transaction.nested and mark is not None:
        events, jobs = mark
        del session.info.get(PENDING_EVENTS, [])[events:]
        del session.info.get(PENDING_JOBS, [])[jobs:]
        return
    if previous_transaction.parent is None:
        session.info.pop(PENDING_EVENTS, None)
        session.info.pop(PENDING_JOBS, None)
        session.info.pop(_MARKS, None)
        session.info.pop(_WROTE, None)
