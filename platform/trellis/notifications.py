"""In-app notifications: tell a user something needs their attention.

:func:`notify` adds one notification in the caller's transaction;
:func:`notify_from_select` adds one per row of a SELECT in a single
``INSERT … SELECT`` (for periodic jobs that touch many records).  Both are
idempotent per ``(user, dedupe_key)``: a job that runs twice notifies once.

:func:`email_notifications` (the core job ``core.email_notifications``) e-mails
the notifications of users who asked for e-mail; :func:`mark_read` and
:func:`unread_count` serve the web page and the REST API, always for one user.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from itertools import groupby
from typing import Any, Iterable

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, and_, exists, func, insert, literal, select, update

from trellis.db import utcnow
from trellis.models import Notification, UserPreference

__all__ = ["notify", "notify_from_select", "email_notifications", "mark_read", "unread_count"]

log = logging.getLogger(__name__)

#: Name of the core job that e-mails notifications; plugins enqueue it after notifying.
EMAIL_JOB = "core.email_notifications"
#: Older unread notifications are not e-mailed (a user who turns e-mail on later
#: does not receive a backlog).
EMAIL_MAX_AGE = timedelta(days=2)

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
        source).returning(Notification.id))
    return len(result.all())  # (rowcount of INSERT … SELECT is -1 under psycopg)


def unread_count(session: Any, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def mark_read(session: Any, user_id: int, ids: Iterable[int] | None = None) -> int:
    """Mark ``user_id``'s notifications ``ids`` (all of them when ``None``) read, in
    one UPDATE; other users' ids are ignored.  Returns how many changed."""
    stmt = update(Notification).where(Notification.user_id == user_id,
                                      Notification.read_at.is_(None))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    result = session.execute(stmt.values(read_at=utcnow()),
                             execution_options={"synchronize_session": False})
    return result.rowcount or 0


def _absolute(link: str | None) -> str | None:
    if not link:
        return None
    return f"{current_app.config.get('TRELLIS_BASE_URL') or ''}{link}"


def _digest(email: str, notes: list[Notification]) -> Any:
    from trellis.mail import Mail

    subject = notes[0].subject if len(notes) == 1 else f"{len(notes)} new notifications"
    parts = []
    for note in notes:
        lines = [note.subject]
        if note.body:
            lines.append(note.body)
        if note.link:
            lines.append(_absolute(note.link))
        parts.append("\n".join(lines))
    body = "\n\n".join(parts) + "\n\n--\nTrellis. Turn these e-mails off under My preferences.\n"
    return Mail(to=email, subject=f"[Trellis] {subject}", body=body)


def email_notifications(limit: int = 500) -> int:
    """Job ``core.email_notifications``: e-mail unsent, unread notifications of users
    who want e-mail, one message per user; returns how many messages went out.

    The rows are claimed first with one ``UPDATE … SET emailed_at = <this run>
    WHERE emailed_at IS NULL`` and committed, so two runs at once never send the
    same notification twice.  If the SMTP server cannot be reached the claim is
    undone and the next run tries again.  Without an SMTP host the messages go
    to the outbox folder (:mod:`trellis.mail`); with that turned off too, nothing
    is claimed: notifications stay in-app.
    """
    from trellis import mail
    from trellis.db import db

    if not mail.configured():
        return 0
    session = db.session
    now = utcnow()
    wanted = select(UserPreference.user_id).where(UserPreference.email_notifications.is_(True))
    due = (select(Notification.id)
           .where(Notification.emailed_at.is_(None), Notification.read_at.is_(None),
                  Notification.created_on >= now - EMAIL_MAX_AGE,
                  Notification.user_id.in_(wanted))
           .order_by(Notification.id).limit(limit))
    claimed = session.execute(
        update(Notification).where(Notification.id.in_(due), Notification.emailed_at.is_(None))
        .values(emailed_at=now), execution_options={"synchronize_session": False}).rowcount
    session.commit()
    if not claimed:
        return 0
    rows = session.execute(
        select(Notification, User.email).join(User, User.id == Notification.user_id)
        .where(Notification.emailed_at == now, User.email.is_not(None), User.email != "")
        .order_by(Notification.user_id, Notification.id)).all()
    mails = [_digest(email, [n for n, _ in group])
             for (_, email), group in groupby(rows, key=lambda row: (row[0].user_id, row[1]))]
    try:
        sent = mail.send(mails)
    except (smtplib.SMTPException, OSError):
        session.execute(update(Notification).where(Notification.emailed_at == now)
                        .values(emailed_at=None),
                        execution_options={"synchronize_session": False})
        session.commit()
        log.exception("could not e-mail %d notification(s); they are retried", claimed)
        raise
    return sent
