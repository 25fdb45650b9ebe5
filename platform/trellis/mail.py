"""Outgoing e-mail: SMTP (the standard library's ``smtplib``), or an outbox folder.

Where mail goes (:func:`transport`):

* **SMTP** when a host is configured: the core settings ``smtp_host``,
  ``smtp_port``, ``smtp_user``, ``smtp_starttls`` and ``mail_from``
  (``Admin > Settings > core``) override the environment variables
  ``TRELLIS_SMTP_HOST``, ``TRELLIS_SMTP_PORT``, ``TRELLIS_SMTP_USER``,
  ``TRELLIS_SMTP_STARTTLS`` and ``TRELLIS_MAIL_FROM``.  The password is only
  ever read from ``TRELLIS_SMTP_PASSWORD`` (never stored in the database).
* **The outbox folder** otherwise: each message is written as an ``.eml`` file
  to ``TRELLIS_MAIL_OUTBOX`` (default ``<instance>/outbox``), so that nothing
  leaves a laptop by accident and a developer can open what would have gone out.
  ``TRELLIS_MAIL_OUTBOX=off`` turns it off: nothing is sent, :func:`send`
  returns 0 and notifications stay in-app.

A :class:`Mail` is one message to one recipient, plain text with an optional
HTML alternative, extra headers (``List-Unsubscribe``...) and threading ids
(``Message-ID``, ``In-Reply-To``, ``References``) for replies that must land in
the recipient's conversation.
"""

from __future__ import annotations

import logging
import os
import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Iterable

from flask import current_app

log = logging.getLogger(__name__)

_warned = False

#: Headers a caller may not set through ``Mail.headers`` (they come from the fields).
RESERVED_HEADERS = frozenset({"from", "to", "subject", "date", "message-id", "in-reply-to",
                              "references", "reply-to", "content-type",
                              "content-transfer-encoding", "mime-version", "bcc", "cc"})


@dataclass(frozen=True)
class Mail:
    """One message to one recipient.

    ``message_id`` is generated when not given (read it back with
    :func:`make_message_id` first when you must store it, e.g. to thread the
    customer's reply).  ``sender`` overrides the configured ``mail_from``.
    """

    to: str
    subject: str
    body: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: str | None = None
    sender: str | None = None


@dataclass(frozen=True)
class MailConfig:
    """Where mail goes; from :func:`config`."""

    host: str | None
    port: int
    user: str | None
    password: str | None
    starttls: bool
    sender: str
    outbox: Path | None


def config() -> MailConfig:
    """The effective mail configuration: core settings over the environment."""
    from trellis.settings import get_settings

    cfg = current_app.config
    try:
        stored = get_settings("core")
    except Exception:  # noqa: BLE001 - no schema yet (before `trellis init`)
        stored = {}
    outbox = cfg.get("TRELLIS_MAIL_OUTBOX")
    if outbox is None:
        outbox = os.path.join(cfg.get("TRELLIS_INSTANCE_PATH") or "instance", "outbox")
    return MailConfig(
        host=stored.get("smtp_host") or cfg.get("TRELLIS_SMTP_HOST") or None,
        port=int(stored.get("smtp_port") or cfg.get("TRELLIS_SMTP_PORT") or 25),
        user=stored.get("smtp_user") or cfg.get("TRELLIS_SMTP_USER") or None,
        password=cfg.get("TRELLIS_SMTP_PASSWORD") or None,
        starttls=bool(stored.get("smtp_starttls") or cfg.get("TRELLIS_SMTP_STARTTLS")),
        sender=stored.get("mail_from") or cfg.get("TRELLIS_MAIL_FROM") or "trellis@localhost",
        outbox=None if str(outbox).lower() in ("", "off", "0", "none") else Path(outbox),
    )


def transport() -> str:
    """``"smtp"``, ``"outbox"`` or ``"none"``: where :func:`send` puts messages."""
    cfg = config()
    if cfg.host:
        return "smtp"
    return "outbox" if cfg.outbox is not None else "none"


def configured() -> bool:
    """Whether mail can go anywhere (SMTP or the outbox); says so in the log,
    once per process, when it cannot."""
    global _warned
    if transport() != "none":
        return True
    if not _warned:
        log.warning("no SMTP host and TRELLIS_MAIL_OUTBOX=off: e-mail is not sent")
        _warned = True
    return False


def make_message_id(sender: str | None = None) -> str:
    """A new ``Message-ID`` (``<…@domain-of-the-sender>``)."""
    sender = sender or config().sender
    return make_msgid(domain=sender.rpartition("@")[2] or "localhost")


def one_line(text: str, limit: int = 250) -> str:
    """``text`` on one line (no CR/LF: header injection), at most ``limit`` characters."""
    return " ".join(str(text).split())[:limit]


def build(mail: Mail, sender: str | None = None) -> EmailMessage:
    """The :class:`~email.message.EmailMessage` for ``mail``."""
    sender = mail.sender or sender or config().sender
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = one_line(mail.to, 998)
    msg["Subject"] = one_line(mail.subject)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = mail.message_id or make_message_id(sender)
    if mail.in_reply_to:
        msg["In-Reply-To"] = one_line(mail.in_reply_to, 998)
    references = [one_line(r, 998) for r in mail.references if r]
    if references:
        msg["References"] = " ".join(references)
    if mail.reply_to:
        msg["Reply-To"] = one_line(mail.reply_to, 998)
    for name, value in mail.headers.items():
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set from the Mail's fields")
        msg[one_line(name, 76)] = one_line(value, 998)
    msg.set_content(mail.body)
    if mail.html is not None:
        msg.add_alternative(mail.html, subtype="html")
    return msg


def _to_outbox(folder: Path, messages: list[EmailMessage]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for msg in messages:
        name = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}.eml"
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(bytes(msg))
        tmp.rename(folder / name)  # readers never see half a file
    return len(messages)


def send(mails: Iterable[Mail]) -> int:
    """Send ``mails`` (over one SMTP connection); returns how many were accepted.

    Raises :class:`smtplib.SMTPException` / :class:`OSError` when the server
    cannot be reached, so a caller can keep the messages for the next try.
    A single recipient the server refuses (or a message that cannot be built)
    is logged and skipped.
    """
    mails = list(mails)
    if not mails or not configured():
        return 0
    cfg = config()
    if not cfg.host:
        messages = []
        for mail in mails:
            try:
                messages.append(build(mail, cfg.sender))
            except ValueError as exc:
                log.warning("e-mail to %s not written: %s", mail.to, exc)
        return _to_outbox(cfg.outbox, messages)  # type: ignore[arg-type]
    sent = 0
    with smtp_connection(cfg) as smtp:
        for mail in mails:
            try:
                smtp.send_message(build(mail, cfg.sender))
                sent += 1
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                    smtplib.SMTPSenderRefused, ValueError) as exc:
                log.warning("e-mail to %s not sent: %s", mail.to, exc)
    return sent


def smtp_connection(cfg: MailConfig | None = None, timeout: float = 30) -> smtplib.SMTP:
    """An open, logged-in SMTP connection (use it as a context manager)."""
    cfg = cfg or config()
    if not cfg.host:
        raise OSError("no SMTP host is configured")
    smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
    try:
        if cfg.starttls:
            smtp.starttls()
        if cfg.user:
            smtp.login(cfg.user, cfg.password or "")
    except Exception:
        smtp.close()
        raise
    return smtp


def check_connection() -> dict[str, Any]:
    """Connect to the configured SMTP server and say hello, sending nothing.

    Returns ``{"ok": True, "transport": ..., "detail": ...}`` or ``ok: False``
    with the error, for the admin's "test connection" button.
    """
    cfg = config()
    if not cfg.host:
        return {"ok": cfg.outbox is not None, "transport": transport(),
                "detail": f"no SMTP host: messages are written to {cfg.outbox}"
                if cfg.outbox else "no SMTP host and the outbox is off"}
    try:
        with smtp_connection(cfg, timeout=10) as smtp:
            code, banner = smtp.noop()
        return {"ok": code == 250, "transport": "smtp",
                "detail": f"{cfg.host}:{cfg.port} answered {code}"}
    except (smtplib.SMTPException, OSError) as exc:
        return {"ok": False, "transport": "smtp", "detail": f"{cfg.host}:{cfg.port}: {exc}"}
