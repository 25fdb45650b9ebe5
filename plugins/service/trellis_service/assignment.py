"""Automatic assignment of new tickets within their team.

The team comes from the ticket (or its category).  Agents marked away
(:class:`~trellis_service.models.AgentStatus`) are skipped.  The setting
``assignment_mode`` picks:

* ``round_robin`` — the next available member (by user id) after the one who
  got the team's latest ticket;
* ``least_open`` — the available member with the fewest unresolved tickets
  (new, open, pending), ties to the lowest user id;
* ``off`` — tickets stay unassigned, in the team's queue.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from trellis.models import team_member
from trellis.settings import get_settings
from trellis_service.models import AgentStatus, Ticket

UNRESOLVED = ("new", "open", "pending")


def _members(session: Any, team_id: int) -> tuple[list[int], set[int]]:
    """All members of the team (sorted) and those who are away."""
    members = sorted(session.scalars(select(team_member.c.user_id)
                                     .where(team_member.c.team_id == team_id)).all())
    away = set(session.scalars(select(AgentStatus.user_id).where(
        AgentStatus.user_id.in_(members), AgentStatus.away.is_(True))).all()) if members else set()
    return members, away


def _pending_last(session: Any) -> dict[int, int]:
    """Who got each team's latest ticket in this transaction, not yet in the
    database (many tickets saved in one flush still take turns)."""
    transaction = session.get_transaction()
    held = session.info.get("service_round_robin")
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info["service_round_robin"] = held
    return held[1]


def round_robin(session: Any, team_id: int) -> int | None:
    members, away = _members(session, team_id)
    if not members or len(away) >= len(members):
        return None
    last = _pending_last(session).get(team_id) or session.scalar(
        select(Ticket.assignee_id).where(Ticket.team_id == team_id,
                                         Ticket.assignee_id.in_(members))
        .order_by(Ticket.id.desc()).limit(1))
    start = members.index(last) + 1 if last in members else 0
    for step in range(len(members)):
        candidate = members[(start + step) % len(members)]
        if candidate not in away:
            return candidate
    return None


def least_open(session: Any, team_id: int) -> int | None:
    members, away = _members(session, team_id)
    available = [m for m in members if m not in away]
    if not available:
        return None
    counts = dict(session.execute(
        select(Ticket.assignee_id, func.count()).where(
            Ticket.assignee_id.in_(available), Ticket.status.in_(UNRESOLVED))
        .group_by(Ticket.assignee_id)).all())
    return min(available, key=lambda user_id: (counts.get(user_id, 0), user_id))


def assign(session: Any, ticket: Ticket) -> int | None:
    """Give a new ticket without an assignee one; returns the user id (or None)."""
    team_id = ticket.team_id if ticket.team_id is not None else (
        ticket.team.id if ticket.team is not None else None)
    if team_id is None:
        return None
    mode = get_settings("service")["assignment_mode"]
    with session.no_autoflush:
        if mode == "round_robin":
            user_id = round_robin(session, team_id)
        elif mode == "least_open":
            user_id = least_open(session, team_id)
        else:
            user_id = None
    if user_id is not None:
        ticket.assignee_id = user_id
        if mode == "round_robin":
            _pending_last(session)[team_id] = user_id
    return user_id
