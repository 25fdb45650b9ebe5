"""Who is acting: a web user, an API client, a job or a CLI command."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

from flask import g, has_request_context, request


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str | None
    source: str  # ui, api, job, cli


_actor: ContextVar[Actor | None] = ContextVar("trellis_actor", default=None)


def current_actor() -> Actor | None:
    """The actor set by :func:`acting_as`, else the logged-in web/API user."""
    actor = _actor.get()
    if actor is not None:
        return actor
    if has_request_context():
        user = getattr(g, "user", None)
        source = "api" if request.path.startswith("/api/") else "ui"
        if user is not None and getattr(user, "is_authenticated", False):
            return Actor(user.id, user.username, source)
        return Actor(None, None, source)
    return None


@contextmanager
def acting_as(user_id: int | None, username: str | None, source: str) -> Iterator[Actor]:
    """Attribute the writes made inside the block (audit log, events) to an actor."""
    actor = Actor(user_id, username, source)
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)
