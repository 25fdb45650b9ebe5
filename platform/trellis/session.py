"""The session class of ``db.session``: it dispatches events and jobs after commit.

SQLAlchemy forbids SQL inside its ``after_commit`` event, yet handlers and
in-process jobs need the database; so the queue built up during the
transaction is drained here, once ``commit()`` has returned successfully.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event as sa_event

log = logging.getLogger(__name__)

PENDING_EVENTS = "trellis_pending_events"
PENDING_JOBS = "trellis_pending_jobs"
#: A handler that commits and so fires events again may nest this deep.
MAX_DISPATCH_DEPTH = 8


class TrellisSession(FlaskSession):
    """Flask-SQLAlchemy's session, dispatching queued events and jobs after commit."""

    _dispatch_depth = 0

    def commit(self) -> None:
        super().commit()
        events = self.info.pop(PENDING_EVENTS, [])
        jobs = self.info.pop(PENDING_JOBS, [])
        if not (events or jobs) or not has_app_context():
            return
        ext = current_app.extensions.get("trellis")
        if ext is None:
            return
        if self._dispatch_depth >= MAX_DISPATCH_DEPTH:
            log.error("event dispatch nested %d deep; dropping %s", MAX_DISPATCH_DEPTH,
                      [e.name for e in events])
            return
        self._dispatch_depth += 1
        try:
            for job in jobs:
                ext.jobs.dispatch(*job)
            for evt in events:
                ext.events.dispatch(evt)
        finally:
            self._dispatch_depth -= 1


def _discard_pending(session: Any, previous_transaction: Any = None) -> None:
    session.info.pop(PENDING_EVENTS, None)
    session.info.pop(PENDING_JOBS, None)


sa_event.listen(TrellisSession, "after_rollback", _discard_pending)


