"""The session class of ``db.session``: it dispatches events and jobs after commit.

SQLAlchemy forbids SQL inside its ``after_commit`` event, yet handlers and
in-process jobs need the database; so the queue built up during the
transaction is drained here, once ``commit()`` has returned successfully.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import replace
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
    """Flask-SQLAlchemy's session, dispatching queued events and jobs after commit."""

    def commit(self) -> None:
        super().commit()
        events = self.info.pop(PENDING_EVENTS, [])
        jobs = self.info.pop(PENDING_JOBS, [])
        if (events or jobs) and has_app_context():
            dispatch(events, jobs)


def dispatch(events: list[Any], jobs: list[Any]) -> None:
    """Send jobs, then call handlers, refusing to nest deeper than
    :data:`MAX_DISPATCH_DEPTH` (a handler that keeps triggering itself)."""
    ext = current_app.extensions.get("trellis")
    if ext is None:
        return
    depth = _depth.get()
    if depth >= MAX_DISPATCH_DEPTH:
        log.error("event dispatch nested %d deep (a handler keeps triggering itself?); "
                  "dropping %s", depth, [e.name for e in events] + [j[0] for j in jobs])
        return
    token = _depth.set(depth + 1)
    try:
        for job in jobs:
            ext.jobs.dispatch(*job)
        for evt in events:
            if callable(evt.data):  # queued with data to compute after the commit
                evt = replace(evt, data=dict(evt.data()))
            ext.events.dispatch(evt)
    finally:
        _depth.reset(token)


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


@sa_event.listens_for(TrellisSession, "after_commit")
def _committed(session: Any) -> None:
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
