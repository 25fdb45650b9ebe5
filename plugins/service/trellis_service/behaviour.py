"""Rules that run on every save of a ticket or a thread message (``before_save``
and ``validate`` on their ``ModelSpec``), whatever the path: form, API, inbound
e-mail, job.

* A new ticket gets its defaults, its team (from its category), an assignee
  (:mod:`trellis_service.assignment`) and its SLA due times
  (:mod:`trellis_service.sla`).
* A status change must follow :data:`~trellis_service.models.TRANSITIONS`
  (else 400 naming ``status``); it stamps ``resolved_at`` / ``closed_at``,
  pauses the SLA clock while ``pending`` and queues ``ticket.status_changed``
  (and ``ticket.resolved``).
* An agent's first public reply (or logged phone call) stamps the ticket's
  ``first_response_at``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from trellis.context import current_actor
from trellis.events import queue
from trellis.mail import make_message_id
from trellis_service import assignment, sla
from trellis_service.models import (
    CHANNELS,
    MESSAGE_KINDS,
    PRIORITIES,
    STATUSES,
    TRANSITIONS,
    Category,
    Ticket,
    TicketMessage,
)

PLUGIN = "service"


def _changed(obj: Any, attr: str) -> bool:
    return inspect(obj).attrs[attr].history.has_changes()


def _old(obj: Any, attr: str) -> Any:
    deleted = inspect(obj).attrs[attr].history.deleted
    return deleted[0] if deleted else None


def _actor_id() -> int | None:
    actor = current_actor()
    return actor.user_id if actor is not None else None


def ticket_before_save(session: Any, ticket: Ticket, action: str) -> None:
    """Defaults, routing, assignment, SLA and status side effects."""
    now = sla.clock()
    if action == "created":
        ticket.status = ticket.status or "new"
        ticket.priority = ticket.priority or "normal"
        ticket.channel = ticket.channel or "api"
        ticket.created_on = sla.utc(ticket.created_on) or now
        ticket.sla_paused_hours = ticket.sla_paused_hours or 0.0
        if ticket.team_id is None and ticket.team is None:
            with session.no_autoflush:
                category = ticket.category if ticket.category is not None else (
                    session.get(Category, ticket.category_id) if ticket.category_id else None)
                if category is not None and category.team is not None:
                    ticket.team = category.team
        if ticket.assignee_id is None and ticket.assignee is None:
            assignment.assign(session, ticket)
        sla.set_due_times(session, ticket)
        queue(session, "ticket.opened", lambda: {"ticket_id": ticket.id,
                                                 "contact_id": ticket.contact_id,
                                                 "channel": ticket.channel}, plugin=PLUGIN)
        if ticket.status == "pending":
            ticket.sla_paused_at = now
        return
    if _changed(ticket, "priority"):
        sla.set_due_times(session, ticket)
    if not _changed(ticket, "status"):
        return
    old, new = _old(ticket, "status"), ticket.status
    sla.status_changed(session, ticket, old, new, now)
    if new == "resolved":
        ticket.resolved_at = now
    elif new == "closed":
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    elif new == "open" and old in ("resolved", "closed"):
        ticket.resolved_at = None
        ticket.closed_at = None
    ticket.resolution_hours = sla.elapsed(session, ticket.created_on, ticket.resolved_at)
    data = {"ticket_id": ticket.id, "contact_id": ticket.contact_id, "old": old, "new": new,
            "reopened": old in ("resolved", "closed") and new == "open"}
    queue(session, "ticket.status_changed", data, plugin=PLUGIN)
    if new == "resolved":
        queue(session, "ticket.resolved", data, plugin=PLUGIN)


def ticket_validate(ticket: Ticket) -> dict[str, list[str]]:
    """Allowed values and the status workflow."""
    errors: dict[str, list[str]] = {}
    if not (ticket.subject or "").strip():
        errors["subject"] = ["Give the ticket a subject."]
    for field, allowed in (("channel", CHANNELS), ("priority", PRIORITIES),
                           ("status", STATUSES)):
        if getattr(ticket, field) not in allowed:
            errors[field] = [f"Must be one of: {', '.join(allowed)}."]
    if "status" not in errors and ticket.id is not None and _changed(ticket, "status"):
        old = _old(ticket, "status")
        if old is not None and old != ticket.status and ticket.status not in TRANSITIONS[old]:
            errors["status"] = [f"A {old} ticket cannot become {ticket.status}; it may become: "
                                f"{', '.join(TRANSITIONS[old])}."]
    return errors


def message_before_save(session: Any, message: TicketMessage, action: str) -> None:
    """The author, the Message-ID of a public reply, and the first response."""
    if action != "created":
        return
    message.kind = message.kind or "reply"
    message.created_on = sla.utc(message.created_on) or sla.clock()
    if message.kind in ("reply", "note", "call") and message.author_id is None \
            and message.author is None:
        message.author_id = _actor_id()
    if message.kind == "reply" and message.message_id is None:
        message.message_id = make_message_id()
    with session.no_autoflush:
        ticket = message.ticket if message.ticket is not None else (
            session.get(Ticket, message.ticket_id) if message.ticket_id else None)
    if ticket is not None and message.kind in ("reply", "call") \
            and ticket.first_response_at is None:
        ticket.first_response_at = message.created_on
        ticket.first_response_hours = sla.elapsed(session, ticket.created_on,
                                                  message.created_on)
    queue(session, "ticket.message_added", lambda: {
        "ticket_id": message.ticket_id, "message_id": message.id, "kind": message.kind},
        plugin=PLUGIN)


def message_validate(message: TicketMessage) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if message.kind not in MESSAGE_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(MESSAGE_KINDS)}."]
    if not (message.body or "").strip():
        errors["body"] = ["Write a message."]
    return errors
