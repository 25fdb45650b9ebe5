"""The e-mail channel.

Inbound: ``POST /service/inbound/email`` takes one raw RFC 822 message (the
body of the request, as a mail server's pipe or a provider's "raw MIME"
webhook delivers it), authenticated by the secret in the header
``X-Trellis-Inbound-Token`` (setting ``inbound_email_secret``, or the
``TRELLIS_SERVICE_INBOUND_SECRET`` config).  :func:`ingest` then

* ignores a message whose ``Message-ID`` is already stored (a redelivery);
* threads it into a ticket when its ``In-Reply-To`` / ``References`` name a
  Message-ID of the ticket or its thread, or when its subject carries the
  ticket's reference ``[#<id>]`` and it comes from the ticket's address;
  a reply to a pending, resolved or closed ticket reopens it (``open``);
* otherwise opens a new ticket (channel ``email``) for the contact with that
  address, creating the contact when there is none.

Outbound: an agent's public reply (``ticket.message_added``, kind ``reply``)
is sent by :func:`send_reply` through :mod:`trellis.mail` to the ticket's
address, with the reply's own ``Message-ID``, ``In-Reply-To`` the customer's
latest message and ``References`` the whole thread, and ``[#<id>]`` in the
subject.
"""

from __future__ import annotations

import hmac
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import func, select

from trellis import mail
from trellis.context import acting_as
from trellis.db import db
from trellis.events import Event
from trellis.models import Contact
from trellis.settings import get_settings
from trellis.validation import RecordInvalid
from trellis_service import attachments, sla
from trellis_service.models import Ticket, TicketMessage

PLUGIN = "service"
MAX_BYTES = 10 * 1024 * 1024
REFERENCE = re.compile(r"\[#(\d{1,12})\]")
MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
REOPEN_FROM = ("pending", "resolved", "closed")

inbound = Blueprint("service_inbound", __name__, url_prefix="/service/inbound")


class InboundError(ValueError):
    """The message cannot become a ticket; ``messages`` is ``{field: [text]}``."""

    def __init__(self, messages: dict[str, list[str]]) -> None:
        super().__init__(str(messages))
        self.messages = messages


# ------------------------------------------------------------------ parsing


def _ids(value: str | None) -> list[str]:
    return MESSAGE_ID.findall(value or "")


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset, broken encoding
        content = part.get_payload(decode=True).decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        content = re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(script|style).*?</\1>", "", content))
    return content.strip()


def parse(raw: bytes) -> dict[str, Any]:
    """The parts of a raw message a ticket needs; :class:`InboundError` if unusable."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        name, address = parseaddr(str(msg.get("From", "")))
        subject = str(msg.get("Subject", "") or "").strip()
        body = _text(msg)
        files = [(part.get_filename(), part.get_payload(decode=True) or b"")
                 for part in msg.iter_attachments()]
    except Exception as exc:  # noqa: BLE001 - any parser failure is the sender's input
        raise InboundError({"message": [f"Not a readable e-mail message: {exc}."]}) from exc
    if "@" not in address:
        raise InboundError({"from": ["The message has no sender address (From)."]})
    message_id = (_ids(str(msg.get("Message-ID", ""))) or [None])[0]
    refs = _ids(str(msg.get("In-Reply-To", ""))) + _ids(str(msg.get("References", "")))
    return {"name": name.strip(), "email": address.strip().lower(),
            "subject": subject[:255] or "(no subject)", "body": body or "(empty message)",
            "message_id": message_id, "references": refs,
            "to": [a for _, a in getaddresses([str(v) for v in msg.get_all("To", [])])],
            "files": files}


# ------------------------------------------------------------------ threading


def _known(message_id: str | None) -> Ticket | None:
    if not message_id:
        return None
    ticket_id = db.session.scalar(select(TicketMessage.ticket_id).where(
        TicketMessage.message_id == message_id).limit(1))
    if ticket_id is None:
        ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.message_id == message_id)
                                      .limit(1))
    return db.session.get(Ticket, ticket_id) if ticket_id is not None else None


def find_ticket(parsed: dict[str, Any]) -> Ticket | None:
    """The ticket this message answers, by its headers or its subject reference."""
    refs = parsed["references"]
    if refs:
        ticket_id = db.session.scalar(
            select(TicketMessage.ticket_id).where(TicketMessage.message_id.in_(refs))
            .order_by(TicketMessage.id.desc()).limit(1))
        if ticket_id is None:
            ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.message_id.in_(refs))
                                          .order_by(Ticket.id.desc()).limit(1))
        if ticket_id is not None:
            return db.session.get(Ticket, ticket_id)
    match = REFERENCE.search(parsed["subject"])
    if match:
        ticket = db.session.get(Ticket, int(match.group(1)))
        # a bare [#id] is easy to guess: only the ticket's own customer may use it
        if ticket is not None and parsed["email"] in _addresses(ticket):
            return ticket
    return None


def _addresses(ticket: Ticket) -> set[str]:
    found = {(ticket.email or "").lower()}
    if ticket.contact is not None and ticket.contact.email:
        found.add(ticket.contact.email.lower())
    return found - {""}


def _contact(parsed: dict[str, Any]) -> Contact:
    contact = db.session.scalar(select(Contact).where(
        func.lower(Contact.email) == parsed["email"]).order_by(Contact.id).limit(1))
    if contact is None:
        first, _, last = (parsed["name"] or parsed["email"].split("@")[0]).partition(" ")
        contact = Contact(first_name=first[:100] or "-", last_name=(last or first)[:100],
                          email=parsed["email"])
        db.session.add(contact)
    return contact


def ingest(raw: bytes) -> dict[str, Any]:
    """Turn one raw message into a ticket or a thread entry; commits.

    Returns ``{"ticket_id", "message_id" (thread entry id or None), "created"
    (a new ticket), "duplicate"}``."""
    parsed = parse(raw)
    with acting_as(None, "inbound-email", "job"):
        existing = _known(parsed["message_id"])
        if existing is not None:
            return {"ticket_id": existing.id, "message_id": None, "created": False,
                    "duplicate": True}
        ticket = find_ticket(parsed)
        try:
            if ticket is None:
                contact = _contact(parsed)
                ticket = Ticket(subject=parsed["subject"], description=parsed["body"],
                                channel="email", email=parsed["email"], contact=contact,
                                account_id=contact.account_id, message_id=parsed["message_id"])
                db.session.add(ticket)
                db.session.commit()
                return {"ticket_id": ticket.id, "message_id": None, "created": True,
                        "duplicate": False, **_attach(parsed, ticket.id, None)}
            entry = TicketMessage(ticket=ticket, kind="customer", body=parsed["body"],
                                  from_email=parsed["email"], message_id=parsed["message_id"],
                                  in_reply_to=(parsed["references"] or [None])[0])
            db.session.add(entry)
            if ticket.status in REOPEN_FROM:
                ticket.status = "open"
            db.session.commit()
        except RecordInvalid as exc:
            db.session.rollback()
            raise InboundError(exc.messages) from exc
        return {"ticket_id": ticket.id, "message_id": entry.id, "created": False,
                "duplicate": False, **_attach(parsed, ticket.id, entry.id)}


def _attach(parsed: dict[str, Any], ticket_id: int, message_id: int | None) -> dict[str, Any]:
    """Store the message's allowed attachments; name the refused ones."""
    stored, skipped = 0, []
    for filename, data in parsed["files"]:
        try:
            db.session.add(attachments.make(ticket_id, filename, data, message_id=message_id))
            stored += 1
        except attachments.AttachmentRefused as exc:
            skipped.append(str(exc))
    if stored:
        db.session.commit()
    return {"attachments": stored, "skipped": skipped}


# ------------------------------------------------------------------ the endpoint


def _secret() -> str:
    return (get_settings(PLUGIN).get("inbound_email_secret") or
            current_app.config.get("TRELLIS_SERVICE_INBOUND_SECRET") or "")


@inbound.route("/email", methods=["POST"])
def inbound_email() -> Any:
    """One raw message in the body; ``X-Trellis-Inbound-Token: <secret>``."""
    secret = _secret()
    given = request.headers.get("X-Trellis-Inbound-Token", "")
    if not secret:
        return jsonify(message="Inbound e-mail is not configured "
                               "(set the service setting inbound_email_secret)."), 404
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return jsonify(message="Missing or wrong X-Trellis-Inbound-Token."), 401
    if (request.content_length or 0) > MAX_BYTES:
        return jsonify(message={"message": [f"Larger than {MAX_BYTES // (1024 * 1024)} MB."]}), 413
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BYTES:
        return jsonify(message={"message": [f"Larger than {MAX_BYTES // (1024 * 1024)} MB."]}), 413
    if not raw.strip():
        return jsonify(message={"message": ["Send the raw e-mail message as the body."]}), 400
    try:
        result = ingest(raw)
    except InboundError as exc:
        return jsonify(message=exc.messages), 400
    return jsonify(result), 200 if result["duplicate"] else 201


# ------------------------------------------------------------------ outbound


def reply_mail(message: TicketMessage) -> mail.Mail | None:
    """The e-mail for an agent's public reply (None: nowhere to send it)."""
    ticket = message.ticket
    to = ticket.email or (ticket.contact.email if ticket.contact is not None else None)
    if message.kind != "reply" or not to:
        return None
    thread = db.session.execute(
        select(TicketMessage.kind, TicketMessage.message_id)
        .where(TicketMessage.ticket_id == ticket.id, TicketMessage.id < message.id,
               TicketMessage.kind.in_(("customer", "reply")),
               TicketMessage.message_id.is_not(None))
        .order_by(TicketMessage.id)).all()
    references = [r for r in [ticket.message_id, *(mid for _, mid in thread)] if r]
    customer = [mid for kind, mid in thread if kind == "customer"]
    in_reply_to = customer[-1] if customer else ticket.message_id
    subject = ticket.subject if ticket.subject.lower().startswith("re:") else \
        f"Re: {ticket.subject}"
    return mail.Mail(to=to, subject=f"{subject} {ticket.reference}", body=message.body,
                     message_id=message.message_id, in_reply_to=in_reply_to,
                     references=tuple(dict.fromkeys(references)))


def send_reply(event: Event) -> None:
    """Handler of ``ticket.message_added``: e-mail an agent's public reply, once."""
    if event.data.get("kind") != "reply":
        return
    message = db.session.get(TicketMessage, event.data.get("message_id"))
    if message is None or message.sent_at is not None:
        return
    outgoing = reply_mail(message)
    if outgoing is None or not mail.configured():
        return
    if mail.send([outgoing]):
        message.sent_at = sla.clock()
        db.session.commit()


__all__ = ["inbound", "ingest", "parse", "find_ticket", "send_reply", "reply_mail"]
