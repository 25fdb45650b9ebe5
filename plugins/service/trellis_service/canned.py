"""Canned responses: team-scoped reusable answers rendered with merge fields.

Fields: ``contact.*`` / ``account.*`` and other plugins' fields
(:func:`trellis.templating.merge_context`), ``ticket.id``, ``ticket.subject``,
``ticket.reference``, ``ticket.status``, ``ticket.priority`` and
``agent.name`` (the user rendering it)."""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import or_, select

from trellis.models import Team, team_member
from trellis.templating import RenderError, check, merge_context, render
from trellis_service.models import CannedResponse, Ticket


def canned_validate(canned: CannedResponse) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not (canned.name or "").strip():
        errors["name"] = ["Give it a name."]
    problems = check(canned.body or "")
    if not (canned.body or "").strip():
        errors["body"] = ["Write the response."]
    elif problems:
        errors["body"] = problems
    return errors


def available(session: Any, ticket: Ticket) -> list[CannedResponse]:
    """Responses for every team, and those of the ticket's team."""
    return list(session.scalars(select(CannedResponse).where(or_(
        CannedResponse.team_id.is_(None), CannedResponse.team_id == ticket.team_id))
        .order_by(CannedResponse.name, CannedResponse.id)))


def user_teams(session: Any, user_id: int) -> set[int]:
    return set(session.scalars(select(Team.id).where(or_(
        Team.manager_id == user_id,
        Team.id.in_(select(team_member.c.team_id).where(team_member.c.user_id == user_id))))))


def render_for(session: Any, canned: CannedResponse, ticket: Ticket) -> str:
    """The response's text for this ticket; :class:`RenderError` if it fails."""
    context: dict[str, Any] = {}
    if ticket.contact_id is not None:
        context = dict(merge_context(session, [ticket.contact_id]).get(ticket.contact_id, {}))
    user = getattr(g, "user", None)
    context["ticket"] = {"id": ticket.id, "subject": ticket.subject,
                         "reference": ticket.reference, "status": ticket.status,
                         "priority": ticket.priority}
    context["agent"] = {"name": " ".join(p for p in (getattr(user, "first_name", ""),
                                                     getattr(user, "last_name", "")) if p)}
    return render(canned.body, context)


__all__ = ["available", "render_for", "canned_validate", "RenderError", "user_teams"]
