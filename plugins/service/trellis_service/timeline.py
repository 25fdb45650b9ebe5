"""Every ticket event on the customer's Activity timeline (event handlers)."""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext

from trellis.db import db
from trellis.events import Event
from trellis.models import Activity
from trellis_service.models import Ticket, TicketMessage

PLUGIN = "service"
#: The timeline's activity types written here: msgids of the plugin's catalog (the
#: customer page shows a type translated).  Subjects are written in the language of
#: the user whose action wrote them (English outside a request).
ACTIVITY_TYPES = (
    lazy_gettext("ticket.opened"), lazy_gettext("ticket.new"), lazy_gettext("ticket.open"),
    lazy_gettext("ticket.pending"), lazy_gettext("ticket.resolved"),
    lazy_gettext("ticket.closed"), lazy_gettext("ticket.reopened"),
    lazy_gettext("ticket.customer_message"), lazy_gettext("ticket.reply"),
    lazy_gettext("ticket.note"), lazy_gettext("ticket.call"), lazy_gettext("ticket.rated"))
#: A ticket's status in an activity's subject: the statuses, and this one.
REOPENED = lazy_gettext("reopened")


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
        _add(ticket, "ticket.opened", gettext("Ticket #%(id)s opened: %(subject)s",
                                              id=ticket.id, subject=ticket.subject),
             {"channel": ticket.channel, "priority": ticket.priority})


def on_status_changed(event: Event) -> None:
    """``ticket.status_changed`` → ``ticket.<new status>`` (``ticket.reopened``) activity."""
    ticket = db.session.get(Ticket, event.data.get("ticket_id"))
    if ticket is None:
        return
    new = event.data.get("new")
    kind = "reopened" if event.data.get("reopened") else new
    _add(ticket, f"ticket.{kind}", gettext("Ticket #%(id)s %(status)s: %(subject)s", id=ticket.id,
                                           status=gettext(kind), subject=ticket.subject),
         {"old": event.data.get("old"), "new": new})


def on_message(event: Event) -> None:
    """``ticket.message_added`` → ``ticket.customer_message`` / ``ticket.reply`` /
    ``ticket.note`` activity (notes are marked internal)."""
    message = db.session.get(TicketMessage, event.data.get("message_id"))
    if message is None:
        return
    labels = {"customer": gettext("Customer wrote on ticket #%(id)s", id=message.ticket_id),
              "reply": gettext("Agent replied on ticket #%(id)s", id=message.ticket_id),
              "note": gettext("Internal note on ticket #%(id)s", id=message.ticket_id),
              "call": gettext("Phone call on ticket #%(id)s", id=message.ticket_id)}
    _add(message.ticket, f"ticket.{'customer_message' if message.kind == 'customer' else message.kind}",
         labels.get(message.kind, f"{message.kind} on ticket #{message.ticket_id}"),
         {"message_id": message.id, "internal": message.internal})
