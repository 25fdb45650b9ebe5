"""In-app notifications: tell a user something needs their attention.

:func:`notify` adds one notification in the caller's transaction;
:func:`notify_from_select` adds one per row of a SELECT in a single
``INSERT … SELECT`` (for periodic jobs that touch many records).  Both are
idempotent per ``(user, dedupe_key)``: a job that runs twice notifies once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, exists, insert, literal, select

from trellis.db import utcnow
from trellis.models import Notification

__all__ = ["notify", "notify_from_select"]

#: Columns a SELECT given to :func:`notify_from_select` must label, in any order.
COLUMNS = ("user_id", "subject", "body", "link", "dedupe_key")


def _safe_link(link: str | None) -> str | None:
    """Only paths inside Trellis: a notification must not send anyone elsewhere."""
    if link is None:
        return None
    if not link.startswith("/") or link.startswith("//") or "\\" in link:
        raise ValueError(f"notification link must be a path inside Trellis, not {link!r}")
    return link[:500]


def notify(session: Any, user_id: int, subject: str, *, body: str | None = None,
           link: str | None = None, kind: str = "info", plugin: str = "core",
           dedupe_key: str | None = None) -> Notification | None:
    """Add a notification for ``user_id``; ``None`` if ``dedupe_key`` was already used."""
    if dedupe_key is not None:
        with session.no_autoflush:
            if session.scalar(select(Notification.id).where(
                    Notification.user_id == user_id, Notification.dedupe_key == dedupe_key)):
                return None
    note = Notification(user_id=user_id, subject=subject[:255], body=body,
                        link=_safe_link(link), kind=kind, plugin=plugin,
                        dedupe_key=dedupe_key, created_on=utcnow())
    session.add(note)
    return note


def notify_from_select(session: Any, rows: Select, *, kind: str = "info",
                       plugin: str = "core") -> int:
    """Insert one notification per row of ``rows`` (labelled :data:`COLUMNS`),
    skipping ``(user_id, dedupe_key)`` pairs that already exist.  Returns how many
    were added.  Links are the caller's responsibility here: build them from ids."""
    sub = rows.subquery()
    already = exists().where(and_(Notification.user_id == sub.c.user_id,
                                  Notification.dedupe_key == sub.c.dedupe_key))
    source = select(sub.c.user_id, sub.c.subject, sub.c.body, sub.c.link, sub.c.dedupe_key,
                    literal(kind), literal(plugin), literal(utcnow())).where(
        sub.c.user_id.is_not(None), ~already)
    result = session.execute(insert(Notification).from_select(
        ["user_id", "subject", "body", "link", "dedupe_key", "kind", "plugin", "created_on"],
        source))
    return result.rowcount or 0
