"""Domain events, fired after the database transaction commits.

Record events (``contact.created``, ``contact.updated``, ``contact.deleted``)
are collected at flush time for every registered model; named events
(``deal.won``) are queued with :func:`emit`.  At commit they become outbox rows
in the same transaction (one per background handler, one for the foreground
handlers; :mod:`trellis.outbox`), delivered once the commit has succeeded, and
dropped on rollback.  Each handler runs on its own: one failing is logged and the
others still run.
"""

from __future__ import annotations

import fnmatch
import logging
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from flask import current_app

from trellis.db import utcnow
from trellis.session import PENDING_EVENTS, dispatch, has_pending_writes

if TYPE_CHECKING:  # pragma: no cover
    from trellis.extension import Trellis

log = logging.getLogger(__name__)

#: The automation rules whose actions are running now (outermost first).
_CHAIN: ContextVar[tuple[int, ...]] = ContextVar("trellis_event_chain", default=())


def current_chain() -> list[int]:
    """The rules (ids) whose actions are running now; events fired meanwhile carry it."""
    return list(_CHAIN.get())


@contextmanager
def caused_by(chain: list[int]) -> Iterator[None]:
    """Mark every event fired inside the block (record events at flush, named events)
    as caused by the automation rules ``chain``, so a rule its own action triggers
    again can be stopped (:mod:`trellis.automation`)."""
    token = _CHAIN.set(tuple(int(i) for i in chain))
    try:
        yield
    finally:
        _CHAIN.reset(token)


@dataclass(frozen=True)
class Event:
    """Something that happened, as handlers and jobs receive it."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    record_id: Any = None
    changes: dict[str, Any] | None = None
    actor_id: int | None = None
    plugin: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: str = field(default_factory=lambda: utcnow().isoformat())
    #: The automation rules whose actions fired this event (:func:`caused_by`).
    chain: list[int] = field(default_factory=current_chain)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Event":
        return cls(**data)


def _actor_id() -> int | None:
    from trellis.context import current_actor

    actor = current_actor()
    return actor.user_id if actor else None


def emit(name: str, data: dict[str, Any] | None = None, *, plugin: str | None = None) -> Event:
    """Fire the named event ``name`` after the current transaction commits.

    With no uncommitted writes on ``db.session`` it is dispatched at once.  ``data`` must be JSON-serialisable: background handlers receive it
    through Redis.
    """
    from trellis.db import db

    evt = Event(name=name, data=dict(data or {}), plugin=plugin, actor_id=_actor_id())
    session = db.session()
    if has_pending_writes(session):
        session.flush()  # record events of earlier changes queue before this one
        session.info.setdefault(PENDING_EVENTS, []).append(evt)
    else:
        dispatch([evt], [])
    return evt


class EventBus:
    """The handlers of one app, and how an event reaches them."""

    def __init__(self, trellis: "Trellis") -> None:
        self.trellis = trellis
        self.handlers: list[tuple[str, Any]] = []  # (plugin, EventHandler)

    def add(self, plugin: str, handler: Any) -> None:
        self.handlers.append((plugin, handler))

    def remove_plugin(self, plugin: str) -> None:
        self.handlers = [(p, h) for p, h in self.handlers if p != plugin]

    def matching(self, name: str) -> list[tuple[str, Any]]:
        return [
            (p, h) for p, h in self.handlers
            if h.event == name or h.event == "*" or fnmatch.fnmatchcase(name, h.event)
        ]

    @staticmethod
    def handler_id(plugin: str, handler: Any) -> str:
        func = handler.func
        return f"{plugin}:{handler.event}:{func.__module__}.{func.__qualname__}"

    def find(self, handler_id: str) -> tuple[str, Any]:
        for plugin, handler in self.handlers:
            if self.handler_id(plugin, handler) == handler_id:
                return plugin, handler
        raise LookupError(f"no event handler {handler_id!r} in this app")

    def run(self, plugin: str, handler: Any, evt: Event) -> None:
        from trellis.db import db

        try:
            handler.func(evt)
        except Exception:  # noqa: BLE001 - isolate one handler's failure
            log.exception("event handler of plugin %r failed on %s", plugin, evt.name)
            db.session.rollback()


def run_event_handler(handler: str, event: dict[str, Any]) -> None:
    """Job body for ``background=True`` handlers (the ``core.run_event_handler`` job)."""
    ext = current_app.extensions["trellis"]
    plugin, spec = ext.events.find(handler)
    if not ext.is_enabled(plugin, fresh=True):
        log.info("skipping handler %s: plugin %r is disabled", handler, plugin)
        return
    spec.func(Event.from_dict(event))


def record_event(name: str, model: str, record_id: Any, changes: dict | None,
                 plugin: str) -> Event:
    return Event(name=name, model=model, record_id=record_id, changes=changes,
                 plugin=plugin, actor_id=_actor_id())



def queue(session: Any, name: str, data: Any = None, *, plugin: str | None = None) -> Event:
    """Queue the named event from inside a flush hook (``ModelSpec.before_save``),
    where :func:`emit` cannot flush; it fires after the commit like any other.

    ``data`` may be a function: it is called when the transaction commits,
    after its last flush, when new records have their ids
    (``lambda: {"deal_id": deal.id}``).
    """
    evt = Event(name=name, data=data if callable(data) else dict(data or {}), plugin=plugin,
                actor_id=_actor_id())
    session.info.setdefault(PENDING_EVENTS, []).append(evt)
    return evt
