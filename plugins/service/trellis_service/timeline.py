"""Every ticket event on the customer's Activity timeline (event handlers)."""

from __future__ import annotations

from trellis.db import db
from trellis.events import Event
from trellis.models import Activity
from trellis_service.models import Ticket, TicketMessage

PLUGIN = "service"


def _add(ticket: Ticket, type_: str, subject: str, payload: dict) -> None:
    if ticket.contact_id is None and ticket.account_id is None:
        return
    db.session.add(Activity(type=type_, subject=subject[:255], contact_id=ticket.contact_id,
                            account_id=ticket.account_id, plugin=PLUGIN,
                            payload={"ticket_id": ticket.id, **payload}))
    db.session.commit()


def on_opened(event: Event) -> None:
    """``ticket.opened`` → ``ticket.opened`` activity."""
    ticket = db.session.get(Ticket, event.data.get("ticket_id"))
    if ticket is not None:
        _add(ticket, "ticket.opened", f"Ticket #{ticket.id} opened: {ticket.subject}",
             {"channel": ticket.channel, "priority": ticket.priority})


def on_status_changed(event: Event) -> None:
    """``ticket.status_changed`` → ``ticket.<new status>`` (``ticket.reopened``) activity."""
    ticket = db.session.get(Ticket, event.data.get("ticket_id"))
    if ticket is None:
        return
    new = event.data.get("new")
    kind = "reopened" if event.data.get("reopened") else new
    _add(ticket, f"ticket.{kind}", f"Ticket #{ticket.id} {kind}: {ticket.subject}",
         {"old": event.data.get("old"), "new": new})


def on_message(event: Event) -> None:
    """``ticket.message_added`` → ``ticket.customer_message`` / ``ticket.reply`` /
    ``ticket.note`` activity (notes are marked internal)."""
    message = db.session.get(TicketMessage, event.data.get("message_id"))
    if message is None:
        return
    label = {"customer": "Customer wrote", "reply": "Agent replied",
             "note": "Internal note", "call": "Phone call"}.get(message.kind, message.kind)
    _add(message.ticket, f"ticket.{'customer_message' if message.kind == 'customer' else message.kind}",
         f"{label} on ticket #{message.ticket_id}",
         {"message_id": message.id, "internal": message.internal})
