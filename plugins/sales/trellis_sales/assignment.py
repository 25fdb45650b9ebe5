"""Automatic assignment of new leads: ordered rules, round-robin within a team."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from trellis.models import Team, team_member
from trellis_sales.models import ASSIGNMENT_FIELDS, AssignmentRule, Lead


def matching_rule(session: Any, lead: Lead) -> AssignmentRule | None:
    """The first active rule (lowest position) the lead matches."""
    with session.no_autoflush:
        rules = session.scalars(select(AssignmentRule).where(AssignmentRule.active.is_(True))
                                .order_by(AssignmentRule.position, AssignmentRule.id)).all()
    for rule in rules:
        if rule.field == "any":
            return rule
        value = getattr(lead, rule.field, None)
        if value is not None and rule.value is not None and \
                str(value).strip().lower() == rule.value.strip().lower():
            return rule
    return None


def next_member(session: Any, team_id: int) -> int | None:
    """The team member after the one who got the team's latest lead (by user id)."""
    with session.no_autoflush:
        members = sorted(session.scalars(select(team_member.c.user_id)
                                         .where(team_member.c.team_id == team_id)).all())
        if not members:
            return None
        last = session.scalar(select(Lead.owner_id).where(Lead.owner_id.in_(members))
                              .order_by(Lead.id.desc()).limit(1))
    if last is None:
        return members[0]
    return members[(members.index(last) + 1) % len(members)]


def assign(session: Any, lead: Lead) -> int | None:
    """Give an unowned new lead an owner; returns the owner id (or None)."""
    rule = matching_rule(session, lead)
    if rule is None:
        return None
    owner = next_member(session, rule.team_id)
    if owner is not None:
        lead.owner_id = owner
    return owner


def rule_before_save(session: Any, rule: AssignmentRule, action: str) -> None:
    if action != "deleted":
        rule.field = rule.field or "any"
        rule.position = rule.position if rule.position is not None else 0
        rule.active = True if rule.active is None else rule.active


def rule_validate(rule: AssignmentRule) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if rule.field not in ASSIGNMENT_FIELDS:
        errors["field"] = [f"Must be one of: {', '.join(ASSIGNMENT_FIELDS)}."]
    elif rule.field != "any" and not (rule.value or "").strip():
        errors["value"] = ["Give the value to match, e.g. DE."]
    if rule.team_id is None and getattr(rule, "team", None) is None:
        errors["team_id"] = ["Choose the team that gets the leads."]
    return errors


__all__ = ["assign", "rule_validate", "Team"]
