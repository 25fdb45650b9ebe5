"""The transactional outbox: jobs and events survive a crash or a Redis outage.

When a transaction that queued jobs (:func:`trellis.jobs.enqueue`) or events
commits, :meth:`trellis.session.TrellisSession.commit` first turns them into
outbox rows, **in that same transaction**: one row per job, per background
event handler (a ``core.run_event_handler`` job) and per event with
foreground handlers.  So the change and the work it causes are committed
together, or not at all.  Right after the commit the same process delivers
the rows it wrote (to rq, or in-process without Redis) and deletes them.

If delivery fails (Redis down, an in-process job raising) or the process
dies first, the row stays.  The **relay** (:func:`relay`, run by ``trellis
scheduler`` every few seconds, and by ``trellis outbox relay``) takes rows
whose claim ran out and delivers them again, with exponential back-off; after
:data:`MAX_ATTEMPTS` a row is *dead* and waits for an admin (*Admin > Jobs*):
retry or discard.

Delivery is at least once: a process killed between handing a job to rq and
deleting its row hands it over again later, under the same rq job id.  Jobs
must be idempotent (claim their rows first, as the plugins' jobs do).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from trellis.db import db, utcnow
from trellis.models import OutboxItem

log = logging.getLogger(__name__)

#: Seconds a process owns the rows it wrote (or claimed) before a relay may take them.
CLAIM_SECONDS = 60
#: Deliveries tried before a row is dead.
MAX_ATTEMPTS = 8
#: Rows a relay takes at a time.
RELAY_BATCH = 200


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 10 s, 20 s, 40 s... at most an hour."""
    return timedelta(seconds=min(3600, 10 * 2 ** max(attempts - 1, 0)))


@dataclass
class Item:
    """One unit of delivery (an outbox row, before or after it is written)."""

    kind: str  # "job" or "event"
    name: str
    payload: dict[str, Any]
    actor_id: int | None
    id: int | None = None


def items_for(ext: Any, events: list[Any], jobs: list[Any]) -> list[Item]:
    """The rows a commit's queued ``jobs`` and ``events`` become.

    Events are matched to the enabled plugins' handlers now: a background
    handler becomes a ``core.run_event_handler`` job, and an event with
    foreground handlers one ``event`` row.  An event nobody handles costs
    nothing.  Event data given as a function is computed here (after the
    flush, so new records have their ids).
    """
    items = [Item("job", name, {"kwargs": kwargs}, actor_id) for name, kwargs, actor_id in jobs]
    for evt in events:
        if callable(evt.data):
            evt = replace(evt, data=dict(evt.data()))
        foreground = False
        for plugin, handler in ext.events.matching(evt.name):
            if not ext.is_enabled(plugin):
                continue
            if handler.background:
                items.append(Item("job", "core.run_event_handler", {"kwargs": {
                    "handler": ext.events.handler_id(plugin, handler),
                    "event": evt.to_dict()}}, evt.actor_id))
            else:
                foreground = True
        if foreground:
            items.append(Item("event", evt.name, evt.to_dict(), evt.actor_id))
    return items


def write(conn_or_session: Any, items: list[Item]) -> list[Item]:
    """Insert ``items`` as claimed rows (on a session inside its transaction, or on
    a connection); sets their ids."""
    if not items:
        return items
    until = utcnow() + timedelta(seconds=CLAIM_SECONDS)
    now = utcnow()
    rows = [{"kind": i.kind, "name": i.name, "payload": i.payload, "actor_id": i.actor_id,
             "created_at": now, "claimed_until": until, "attempts": 0} for i in items]
    ids = conn_or_session.execute(insert(OutboxItem).returning(OutboxItem.id,
                                                               sort_by_parameter_order=True),
                                  rows).scalars().all()
    for item, row_id in zip(items, ids):
        item.id = row_id
    return items


def _deliver_one(ext: Any, item: Item) -> None:
    if item.kind == "job":
        ext.jobs.send(item.name, item.payload.get("kwargs") or {}, item.actor_id,
                      job_id=f"outbox-{item.id}" if item.id else None)
        return
    from trellis.events import Event

    evt = Event.from_dict(item.payload)
    for plugin, handler in ext.events.matching(evt.name):
        if not handler.background and ext.is_enabled(plugin):
            ext.events.run(plugin, handler, evt)  # each handler's failure is its own


def deliver(items: list[Item]) -> int:
    """Deliver ``items`` now; delete the rows of those delivered, and schedule the
    others for the relay.  Returns how many were delivered."""
    ext = current_app.extensions["trellis"]
    done: list[int] = []
    failed: list[tuple[Item, str]] = []
    for item in items:
        try:
            _deliver_one(ext, item)
        except Exception as exc:  # noqa: BLE001 - keep it for the relay
            log.warning("could not deliver %s %r (outbox row %s): %s; the relay retries it",
                        item.kind, item.name, item.id, exc)
            failed.append((item, f"{type(exc).__name__}: {exc}"[:2000]))
        else:
            if item.id is not None:
                done.append(item.id)
    try:
        _settle(done, failed)
    except SQLAlchemyError as exc:  # the database went away after the commit
        # The caller's work is committed; the rows stay claimed and the relay
        # delivers them again when the claim runs out (at least once).
        log.warning("could not record the delivery of outbox rows %s: %s",
                    [i.id for i in items], exc)
    return len(items) - len(failed)


def _settle(done: list[int], failed: list[tuple[Item, str]]) -> None:
    """Record the outcome in a transaction of its own (the caller's is over)."""
    if not done and not any(item.id for item, _ in failed):
        return
    now = utcnow()
    with db.engine.begin() as conn:
        if done:
            conn.execute(delete(OutboxItem).where(OutboxItem.id.in_(done)))
        for item, error in failed:
            if item.id is None:
                continue
            attempts = conn.scalar(select(OutboxItem.attempts).where(
                OutboxItem.id == item.id)) or 0
            attempts += 1
            dead = attempts >= MAX_ATTEMPTS
            conn.execute(update(OutboxItem).where(OutboxItem.id == item.id).values(
                attempts=attempts, last_error=error,
                claimed_until=None if dead else now + backoff(attempts),
                dead_at=now if dead else None))
            if dead:
                log.error("giving up on %s %r (outbox row %s) after %d attempts: %s",
                          item.kind, item.name, item.id, attempts, error)


def send_now(items: list[Item]) -> int:
    """Write ``items`` in a transaction of their own, then deliver them (work queued
    outside any transaction, e.g. a job enqueued by a button)."""
    if not items:
        return 0
    with db.engine.begin() as conn:
        write(conn, items)
    return deliver(items)


def claim(limit: int = RELAY_BATCH) -> list[Item]:
    """Take up to ``limit`` rows whose claim ran out (never two relays the same row)."""
    now = utcnow()
    free = and_(OutboxItem.dead_at.is_(None),
                or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now))
    with db.engine.begin() as conn:
        ids = conn.scalars(select(OutboxItem.id).where(free).order_by(OutboxItem.id)
                           .limit(limit)).all()
        if not ids:
            return []
        rows = conn.execute(
            update(OutboxItem).where(OutboxItem.id.in_(ids), free)
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            .returning(OutboxItem.id, OutboxItem.kind, OutboxItem.name, OutboxItem.payload,
                       OutboxItem.actor_id)).all()
    return sorted((Item(kind, name, payload, actor, row_id)
                   for row_id, kind, name, payload, actor in rows), key=lambda i: i.id or 0)


def relay(limit: int = RELAY_BATCH) -> int:
    """Deliver rows left behind (by a crash or an outage); returns how many went."""
    from trellis.session import delivering

    items = claim(limit)
    if not items:
        return 0
    with delivering():
        delivered = deliver(items)
    if delivered:
        log.info("outbox relay delivered %d of %d item(s)", delivered, len(items))
    return delivered


def retry(ids: list[int]) -> int:
    """Make dead or waiting rows due now (the admin's *Retry*)."""
    with db.engine.begin() as conn:
        result = conn.execute(update(OutboxItem).where(OutboxItem.id.in_(ids)).values(
            dead_at=None, claimed_until=None, attempts=0))
    return result.rowcount or 0


def discard(ids: list[int]) -> int:
    """Drop dead rows for good (the admin's *Discard*)."""
    with db.engine.begin() as conn:
        result = conn.execute(delete(OutboxItem).where(OutboxItem.id.in_(ids),
                                                       OutboxItem.dead_at.is_not(None)))
    return result.rowcount or 0


def pending_count() -> dict[str, int]:
    """How many rows wait for delivery and how many are dead (health, admin page)."""
    from sqlalchemy import func

    rows = db.session.execute(select(OutboxItem.dead_at.is_(None), func.count())
                              .group_by(OutboxItem.dead_at.is_(None))).all()
    counts = {"pending": 0, "dead": 0}
    for alive, count in rows:
        counts["pending" if alive else "dead"] += count
    return counts
