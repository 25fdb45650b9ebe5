"""Outgoing e-mail through SMTP (the standard library's ``smtplib``).

Configured by ``TRELLIS_SMTP_HOST``, ``TRELLIS_SMTP_PORT``, ``TRELLIS_SMTP_USER``,
``TRELLIS_SMTP_PASSWORD``, ``TRELLIS_SMTP_STARTTLS`` and ``TRELLIS_MAIL_FROM``
(docs/operations.md).  Without a host nothing is sent: :func:`send` logs that
once per process and returns ``0``, and notifications stay in-app.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Iterable

from flask import current_app

log = logging.getLogger(__name__)

_warned = False


@dataclass(frozen=True)
class Mail:
    """One plain-text message to one recipient."""

    to: str
    subject: str
    body: str


def configured() -> bool:
    """Whether an SMTP host is set, so e-mail can go out (says so in the log,
    once per process, when it is not)."""
    global _warned
    if current_app.config.get("TRELLIS_SMTP_HOST"):
        return True
    if not _warned:
        log.warning("TRELLIS_SMTP_HOST is not set: notifications are not e-mailed")
        _warned = True
    return False


def _message(mail: Mail, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    # header injection: EmailMessage refuses CR/LF in headers; keep subjects one line
    msg["Subject"] = " ".join(mail.subject.split())[:250]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(mail.body)
    return msg


def send(mails: Iterable[Mail]) -> int:
    """Send ``mails`` over one SMTP connection; returns how many were accepted.

    Raises :class:`smtplib.SMTPException` / :class:`OSError` when the server
    cannot be reached, so a caller can keep the messages for the next try.
    A single recipient the server refuses is logged and skipped.
    """
    mails = list(mails)
    if not configured() or not mails:
        return 0
    cfg = current_app.config
    sender = cfg.get("TRELLIS_MAIL_FROM") or "trellis@localhost"
    sent = 0
    with smtplib.SMTP(cfg["TRELLIS_SMTP_HOST"], int(cfg.get("TRELLIS_SMTP_PORT") or 25),
                      timeout=30) as smtp:
        if cfg.get("TRELLIS_SMTP_STARTTLS"):
            smtp.starttls()
        if cfg.get("TRELLIS_SMTP_USER"):
            smtp.login(cfg["TRELLIS_SMTP_USER"], cfg.get("TRELLIS_SMTP_PASSWORD") or "")
        for mail in mails:
            try:
                smtp.send_message(_message(mail, sender))
                sent += 1
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                    smtplib.SMTPSenderRefused, ValueError) as exc:
                log.warning("e-mail to %s not sent: %s", mail.to, exc)
    return sent
