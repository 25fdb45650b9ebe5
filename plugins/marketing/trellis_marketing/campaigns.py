"""Sending campaigns: one :class:`Message` per recipient, claimed before it is sent.

1. :func:`start` (``POST /api/v1/campaign/<id>/send``, or the schedule when
   ``scheduled_at`` has come) turns the campaign's segment into ``queued``
   messages with one ``INSERT … SELECT``: contacts with an e-mail address whose
   consent allows marketing e-mail (:mod:`trellis.consent`), never hard-bounced,
   and without a message of this campaign yet (``UNIQUE (campaign_id,
   contact_id)``: a contact never gets two e-mails of one campaign).  It then
   enqueues the rq job ``marketing.send_campaign``.
2. :func:`send_campaign` claims a batch (``UPDATE … SET status='sending',
   claim_token=…`` on queued rows, committed), renders each message in the
   sandbox (:mod:`trellis.templating`, merge fields for the whole batch at once),
   re-checks consent, and talks SMTP itself so that the database commit sits
   *inside* the SMTP transaction: ``MAIL``, ``RCPT``, ``DATA`` and the body go
   out, the message is marked ``sent`` and committed, and only then the final
   ``.`` that makes the server accept it.  A worker that dies before the commit
   leaves a ``sending`` row whose message the server never accepted (SMTP
   discards a message without its final dot), so :func:`recover` can queue it
   again without sending it twice.  Sends are throttled to the
   ``send_rate_per_minute`` setting.
3. :func:`recover` (job ``marketing.recover``, every minute) puts claims older
   than the lease back to ``queued``, restarts the send job of campaigns that
   still have queued messages, and starts scheduled campaigns that are due.

Every e-mail carries a signed one-click unsubscribe link (``List-Unsubscribe`` and
``List-Unsubscribe-Post`` headers, RFC 8058), an open pixel and signed click
redirects (:mod:`trellis_marketing.tracking`).
"""

from __future__ import annotations

import html as html_lib
import logging
import re
import smtplib
import time
import uuid
from datetime import timedelta, timezone
from email import policy
from typing import Any, Callable

from flask import current_app
from flask_babel import lazy_gettext
from sqlalchemy import and_, case, exists, func, insert, literal, not_, select, update

from trellis import consent, mail, signing, templating
from trellis.db import db, utcnow
from trellis.jobs import enqueue
from trellis.models import Activity, Contact
from trellis.settings import get_settings
from trellis_marketing import segments
from trellis_marketing.models import Campaign, EmailTemplate, Message

log = logging.getLogger(__name__)

PLUGIN = "marketing"
#: The timeline's activity types this plugin writes: msgids of its catalog (the
#: customer page shows a type translated).
ACTIVITY_TYPES = (lazy_gettext("email.opened"), lazy_gettext("email.clicked"),
                  lazy_gettext("email.unsubscribed"), lazy_gettext("product.viewed"))
PURPOSE = "marketing"
BATCH = 50
#: A claim older than this is put back to ``queued`` by :func:`recover`.
CLAIM_LEASE = timedelta(minutes=5)
SEND_JOB = "marketing.send_campaign"

UNSUBSCRIBE, OPEN, CLICK = "marketing-unsubscribe", "marketing-open", "marketing-click"


# ------------------------------------------------------------------ who


def never_bounced(contact_id: Any) -> Any:
    """SQL: the contact has no hard-bounced marketing message."""
    return not_(exists().where(Message.contact_id == contact_id, Message.status == "bounced"))


def eligible(campaign: Campaign) -> Any:
    """``select(contact_id, email)`` of the campaign's recipients not yet queued."""
    members = segments.members(campaign.segment).subquery()
    return (select(Contact.id, Contact.email)
            .where(Contact.id.in_(select(members.c.contact_id)),
                   Contact.email.is_not(None), func.trim(Contact.email) != "",
                   consent.allowed(Contact.id, "email", PURPOSE),
                   never_bounced(Contact.id),
                   ~exists().where(Message.campaign_id == campaign.id,
                                   Message.contact_id == Contact.id)))


def queue_messages(session: Any, campaign: Campaign) -> int:
    """Insert the campaign's ``queued`` messages (one INSERT … SELECT); how many.

    With a B variant, ``ab_test_percent`` of the recipients (by contact id) get A
    or B, half each; the others wait (``held``) for the winner."""
    now = literal(utcnow(), type_=Message.created_on.type)
    if campaign.template_b_id:
        in_test = (Contact.id % 100) < int(campaign.ab_test_percent or 0)
        variant = case((and_(in_test, Contact.id % 2 == 0), literal("A")),
                       (in_test, literal("B")), else_=literal(None))
        status = case((in_test, literal("queued")), else_=literal("held"))
        template = case((and_(in_test, Contact.id % 2 == 1), literal(campaign.template_b_id)),
                        else_=literal(campaign.template_id))
    else:
        variant, status, template = literal(None), literal("queued"), literal(
            campaign.template_id)
    rows = eligible(campaign).add_columns(literal(campaign.id), template, variant, status, now)
    result = session.execute(insert(Message).from_select(
        ["contact_id", "email", "campaign_id", "template_id", "variant", "status",
         "created_on"], rows).returning(Message.id))
    return len(result.all())


def start(session: Any, campaign_id: int) -> dict[str, Any]:
    """Start sending (once: a campaign already sending or sent is left alone);
    the caller commits, which also enqueues the send job."""
    started = session.execute(
        update(Campaign).where(Campaign.id == campaign_id,
                               Campaign.status.in_(("draft", "scheduled")))
        .values(status="sending", started_at=utcnow()).returning(Campaign.id),
        execution_options={"synchronize_session": False}).first()
    if started is None:
        return {"started": False, "queued": 0}
    campaign = session.get(Campaign, campaign_id)
    session.refresh(campaign)
    if campaign.segment.kind == "static" and campaign.segment.evaluated_at is None:
        segments.snapshot(session, campaign.segment)
    queued = queue_messages(session, campaign)
    enqueue(SEND_JOB, campaign_id=campaign_id)
    return {"started": True, "queued": queued}


# ------------------------------------------------------------------ links


def _base() -> str:
    return (current_app.config.get("TRELLIS_BASE_URL") or "").rstrip("/")


def unsubscribe_url(message_id: int, contact_id: int) -> str:
    return f"{_base()}/marketing/t/u/{signing.sign(UNSUBSCRIBE, {'m': message_id, 'c': contact_id})}"


def open_url(message_id: int) -> str:
    return f"{_base()}/marketing/t/o/{signing.sign(OPEN, {'m': message_id})}.gif"


def click_url(message_id: int, url: str) -> str:
    return f"{_base()}/marketing/t/c/{signing.sign(CLICK, {'m': message_id, 'u': url})}"


_HREF = re.compile(r"""href\s*=\s*(["'])(https?://[^"']+)\1""", re.IGNORECASE)


def track_html(body: str, message_id: int) -> str:
    """Rewrite the HTML's ``http(s)`` links through signed click redirects and add
    the open pixel."""
    def swap(match: re.Match[str]) -> str:
        url = html_lib.unescape(match.group(2))
        return f'href="{html_lib.escape(click_url(message_id, url))}"'

    body = _HREF.sub(swap, body)
    pixel = (f'<img src="{html_lib.escape(open_url(message_id))}" width="1" height="1" '
             f'alt="" style="display:none">')
    if re.search(r"</body>", body, re.IGNORECASE):
        return re.sub(r"</body>", pixel + "</body>", body, count=1, flags=re.IGNORECASE)
    return body + pixel


# ------------------------------------------------------------------ rendering


class Renderer:
    """Templates compiled once per job; ``render(message, context)`` -> Mail."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.compiled: dict[int, tuple[Callable, Callable, Callable | None]] = {}
        self.sender = get_settings(PLUGIN)["from_address"]

    def _template(self, template_id: int) -> tuple[Callable, Callable, Callable | None]:
        if template_id not in self.compiled:
            t = self.session.get(EmailTemplate, template_id)
            self.compiled[template_id] = (
                templating.compile_template(t.subject),
                templating.compile_template(t.text_body),
                templating.compile_template(t.html_body, html=True) if t.html_body else None)
        return self.compiled[template_id]

    def render(self, message_id: int, contact_id: int, email: str, template_id: int,
               context: dict[str, Any], campaign_name: str = "") -> mail.Mail:
        subject, text, html = self._template(template_id)
        unsubscribe = unsubscribe_url(message_id, contact_id)
        ctx = {**context, "unsubscribe_url": unsubscribe, "campaign": {"name": campaign_name}}
        text_body = text(ctx)
        if "unsubscribe_url" not in (self.session.get(EmailTemplate, template_id).text_body
                                     or ""):
            text_body += f"\n\n--\nUnsubscribe: {unsubscribe}\n"
        html_body = track_html(html(ctx), message_id) if html else None
        return mail.Mail(
            to=email, subject=subject(ctx), body=text_body, html=html_body,
            sender=self.sender,
            message_id=f"<marketing.{message_id}.{uuid.uuid4().hex[:8]}@"
                       f"{self.sender.rpartition('@')[2] or 'localhost'}>",
            headers={"List-Unsubscribe": f"<{unsubscribe}>",
                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                     "X-Trellis-Message": str(message_id)})


# ------------------------------------------------------------------ sending


class _Throttle:
    def __init__(self, per_minute: int) -> None:
        self.interval = 60.0 / max(1, per_minute)
        self.next_at = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def claim(session: Any, where: Any, limit: int) -> tuple[str, list[int]]:
    """Claim up to ``limit`` queued messages matching ``where`` for this sender and
    commit the claim; ``(token, ids)``."""
    token = uuid.uuid4().hex
    pick = select(Message.id).where(where, Message.status == "queued")\
        .order_by(Message.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    # two statements in one transaction: an IN (… LIMIT … SKIP LOCKED) subquery may be
    # re-run by PostgreSQL per row and claim far more than ``limit``
    picked = session.scalars(pick).all()
    ids = session.execute(
        update(Message).where(Message.id.in_(picked), Message.status == "queued")
        .values(status="sending", claim_token=token, claimed_at=utcnow())
        .returning(Message.id), execution_options={"synchronize_session": False}
    ).scalars().all() if picked else []
    session.commit()
    return token, sorted(ids)


def _finish(session: Any, message_id: int, token: str, **values: Any) -> None:
    session.execute(update(Message).where(Message.id == message_id,
                                          Message.claim_token == token).values(**values),
                    execution_options={"synchronize_session": False})
    session.commit()


def _smtp_send(session: Any, smtp: smtplib.SMTP, built: Any, sender: str, to: str,
               on_accepting: Callable[[], None]) -> tuple[str, int, str]:
    """One message over an open connection, calling ``on_accepting`` (the commit)
    after the body is sent and before the final dot.  ``(stage, code, text)`` of
    the server's answer (stage ``rcpt`` when it refused the recipient)."""
    smtp.ehlo_or_helo_if_needed()
    code, resp = smtp.mail(sender)
    if code != 250:
        smtp.rset()
        return "mail", code, resp.decode(errors="replace")
    code, resp = smtp.rcpt(to)
    if code not in (250, 251):
        smtp.rset()
        return "rcpt", code, resp.decode(errors="replace")
    code, resp = smtp.docmd("data")
    if code != 354:
        smtp.rset()
        return "data", code, resp.decode(errors="replace")
    payload = built.as_bytes(policy=policy.SMTP)
    quoted = smtplib._quote_periods(payload)  # noqa: SLF001 - smtplib's own dot-stuffing
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    smtp.send(quoted)
    on_accepting()
    smtp.send(b".\r\n")
    code, resp = smtp.getreply()
    return "end", code, resp.decode(errors="replace")


def send_claimed(session: Any, token: str, ids: list[int], throttle: _Throttle,
                 renderer: Renderer, names: dict[int, str]) -> dict[str, int]:
    """Render and send the claimed messages ``ids``; their outcome is recorded row
    by row.  Raises (claims left for :func:`recover`) when the server is down."""
    counts = {"sent": 0, "failed": 0, "bounced": 0, "skipped": 0}
    rows = session.execute(
        select(Message.id, Message.contact_id, Message.email, Message.template_id,
               Message.campaign_id,
               consent.allowed(Message.contact_id, "email", PURPOSE).label("allowed"))
        .where(Message.id.in_(ids), Message.claim_token == token)
        .order_by(Message.id)).all()
    contexts = templating.merge_context(session, [r.contact_id for r in rows])
    cfg = mail.config()
    smtp = mail.smtp_connection(cfg) if cfg.host else None
    try:
        for row in rows:
            if not row.allowed or row.contact_id not in contexts:
                _finish(session, row.id, token, status="skipped",
                        error="consent withdrawn before sending")
                counts["skipped"] += 1
                continue
            try:
                built_mail = renderer.render(row.id, row.contact_id, row.email,
                                             row.template_id, contexts[row.contact_id],
                                             names.get(row.campaign_id or 0, ""))
                built = mail.build(built_mail)
            except (templating.RenderError, ValueError) as exc:
                _finish(session, row.id, token, status="failed", error=str(exc)[:500])
                counts["failed"] += 1
                continue
            throttle.wait()
            sent_values = {"status": "sent", "sent_at": utcnow(),
                           "smtp_message_id": built_mail.message_id}
            if smtp is None:
                _finish(session, row.id, token, **sent_values)
                mail.send([built_mail])
                counts["sent"] += 1
                continue
            stage, code, text = _smtp_send(session, smtp, built, built_mail.sender or cfg.sender,
                                    row.email,
                                    lambda: _finish(session, row.id, token, **sent_values))
            if code == 250:
                counts["sent"] += 1
            elif stage == "rcpt" and 500 <= code < 600:
                _finish(session, row.id, token, status="bounced", bounced_at=utcnow(),
                        sent_at=None, error=f"{code} {text}"[:500])
                counts["bounced"] += 1
            else:
                _finish(session, row.id, token, status="failed", sent_at=None,
                        error=f"{code} {text}"[:500])
                counts["failed"] += 1
    except BaseException:
        if smtp is not None:  # maybe inside DATA: never QUIT (it would become body text)
            smtp.close()
            smtp = None
        raise
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    return counts


def send_campaign(campaign_id: int, batch_size: int = BATCH) -> dict[str, Any]:
    """Job ``marketing.send_campaign``: send the campaign's queued messages in
    claimed batches until none is left, then mark it sent."""
    session = db.session
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status not in ("sending",):
        return {"skipped": True}
    throttle = _Throttle(get_settings(PLUGIN)["send_rate_per_minute"])
    renderer = Renderer(session)
    names = {campaign.id: campaign.name}
    totals = {"sent": 0, "failed": 0, "bounced": 0, "skipped": 0}
    while True:
        token, ids = claim(session, Message.campaign_id == campaign_id, batch_size)
        if not ids:
            break
        for key, value in send_claimed(session, token, ids, throttle, renderer, names).items():
            totals[key] += value
    session.execute(
        update(Campaign).where(
            Campaign.id == campaign_id, Campaign.status == "sending",
            ~exists().where(Message.campaign_id == campaign_id,
                            Message.status.in_(("queued", "sending", "held"))))
        .values(status="sent", finished_at=utcnow()),
        execution_options={"synchronize_session": False})
    session.commit()
    return totals


def recover(lease_seconds: int | None = None) -> dict[str, int]:
    """Job ``marketing.recover``: claims older than the lease back to ``queued``
    (their final dot never went out), the send job again for campaigns with queued
    messages, and due scheduled campaigns started."""
    session = db.session
    lease = timedelta(seconds=lease_seconds) if lease_seconds is not None else CLAIM_LEASE
    now = utcnow()
    released = session.execute(
        update(Message).where(Message.status == "sending", Message.claimed_at <= now - lease)
        .values(status="queued", claim_token=None, claimed_at=None)
        .returning(Message.id), execution_options={"synchronize_session": False}).all()
    session.commit()
    due = session.scalars(select(Campaign.id).where(Campaign.status == "scheduled",
                                                    Campaign.scheduled_at <= now)).all()
    for campaign_id in due:
        start(session, campaign_id)
        session.commit()
    winners = pick_winners(session, now)
    pending = session.scalars(select(Campaign.id).where(
        Campaign.status == "sending",
        exists().where(Message.campaign_id == Campaign.id, Message.status == "queued"))).all()
    for campaign_id in pending:
        if campaign_id not in due:
            enqueue(SEND_JOB, campaign_id=campaign_id)
    session.commit()
    return {"released": len(released), "started": len(due), "resumed": len(pending),
            "winners": len(winners)}


def pick_winners(session: Any, now: Any) -> list[int]:
    """A/B campaigns whose test ran ``ab_wait_hours``: the variant with the better
    open (or click) rate wins (A on a tie); the held messages are queued with the
    winner's template.  The campaigns decided."""
    decided = []
    for campaign in session.scalars(select(Campaign).where(
            Campaign.status == "sending", Campaign.template_b_id.is_not(None),
            Campaign.ab_winner.is_(None))).all():
        started = campaign.started_at
        if started is not None and started.tzinfo is None:  # SQLite hands back naive UTC
            started = started.replace(tzinfo=timezone.utc)
        if started is None or started > now - timedelta(hours=campaign.ab_wait_hours or 0):
            continue
        column = Message.clicked_at if campaign.ab_metric == "clicked" else Message.opened_at
        rates = dict(session.execute(
            select(Message.variant, func.avg(case((column.is_not(None), 1.0), else_=0.0)))
            .where(Message.campaign_id == campaign.id, Message.variant.in_(("A", "B")),
                   Message.status.not_in(("queued", "sending")))
            .group_by(Message.variant)).all())
        winner = "B" if float(rates.get("B") or 0) > float(rates.get("A") or 0) else "A"
        template = campaign.template_b_id if winner == "B" else campaign.template_id
        campaign.ab_winner = winner
        session.execute(update(Message).where(Message.campaign_id == campaign.id,
                                              Message.status == "held")
                        .values(status="queued", template_id=template),
                        execution_options={"synchronize_session": False})
        decided.append(campaign.id)
    session.commit()
    return decided


# ------------------------------------------------------------------ tracking events


def _activity(session: Any, contact_id: int, kind: str, subject: str,
              payload: dict[str, Any]) -> None:
    session.add(Activity(type=kind, subject=subject[:255], contact_id=contact_id,
                         plugin=PLUGIN, payload=payload))


def record_open(session: Any, message_id: int) -> bool:
    """The first open of a message: ``opened_at``, its status and a timeline activity."""
    done = session.execute(
        update(Message).where(Message.id == message_id, Message.opened_at.is_(None))
        .values(opened_at=utcnow(),
                status=case((Message.status == "sent", "opened"), else_=Message.status))
        .returning(Message.contact_id, Message.campaign_id),
        execution_options={"synchronize_session": False}).first()
    if done is None:
        return False
    _activity(session, done[0], "email.opened", "Opened a marketing e-mail",
              {"message_id": message_id, "campaign_id": done[1]})
    return True


def record_click(session: Any, message_id: int, url: str) -> bool:
    """A click: ``clicked_at`` (first), the status, and a timeline activity per click."""
    row = session.execute(select(Message.contact_id, Message.campaign_id, Message.opened_at)
                          .where(Message.id == message_id)).first()
    if row is None:
        return False
    now = utcnow()
    session.execute(
        update(Message).where(Message.id == message_id)
        .values(clicked_at=func.coalesce(Message.clicked_at, now),
                opened_at=func.coalesce(Message.opened_at, now),
                status=case((Message.status.in_(("sent", "opened")), "clicked"),
                            else_=Message.status)),
        execution_options={"synchronize_session": False})
    _activity(session, row[0], "email.clicked", f"Clicked {url}"[:255],
              {"message_id": message_id, "campaign_id": row[1], "url": url[:1000]})
    return True


def record_unsubscribe(session: Any, message_id: int, contact_id: int,
                       evidence: dict[str, Any]) -> bool:
    """Withdraw the contact's marketing e-mail consent (the ledger), mark the
    message and add a timeline activity; idempotent."""
    row = session.execute(select(Message.contact_id, Message.campaign_id)
                          .where(Message.id == message_id)).first()
    if row is None or row[0] != contact_id:
        return False
    if consent.is_allowed(session, contact_id, "email", PURPOSE):
        consent.record(session, contact_id, "email", PURPOSE, False,
                       source="unsubscribe_link", lawful_basis="consent",
                       evidence={**evidence, "message_id": message_id})
    changed = session.execute(
        update(Message).where(Message.id == message_id, Message.unsubscribed_at.is_(None))
        .values(unsubscribed_at=utcnow(), status="unsubscribed")
        .returning(Message.id), execution_options={"synchronize_session": False}).first()
    if changed is not None:
        _activity(session, contact_id, "email.unsubscribed", "Unsubscribed from marketing e-mail",
                  {"message_id": message_id, "campaign_id": row[1]})
    return True


