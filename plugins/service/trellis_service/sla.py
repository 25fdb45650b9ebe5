"""Ticket SLAs: first-response and resolution targets per priority, in business
hours of the core's default calendar (:mod:`trellis.businesshours`).

* :func:`set_due_times` (on create and on a priority change):
  ``first_response_due_at = created + first_response_hours`` and
  ``resolution_due_at = created + resolution_hours + sla_paused_hours``.
* :func:`status_changed`: the resolution clock stops while the ticket is
  ``pending`` (waiting on the customer).  When it leaves ``pending``, the
  business hours it spent there are added to ``sla_paused_hours`` and the
  resolution due time moves by as much — unless the ticket was already past
  due when it was paused.  The first-response clock never pauses.
* :func:`state_expression`: ``met``, ``on_track``, ``at_risk``, ``paused``,
  ``breached`` (``None`` without a policy) as one SQL ``CASE``; the ticket API
  and list show it.
* :func:`check_sla`, the periodic job ``service.check_sla``: in set-based SQL,
  flags tickets at risk (due within ``sla_warn_minutes`` business minutes) and
  breached, once each (``sla_at_risk_at`` / ``sla_breached_at``), notifies the
  assignee (unassigned tickets: service managers and admins), and escalates a
  breached ticket once (``sla_escalated_at``): the team's manager is notified,
  its priority is raised one step (setting ``escalate_raise_priority``) and,
  with ``escalate_reassign``, it is handed to the team's manager.  Events ``ticket.sla_at_risk`` / ``ticket.sla_breached``
  fire once per ticket.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import Role, User, assoc_user_role
from sqlalchemy import String, and_, case, cast, func, literal, not_, or_, select, update

from trellis import features
from trellis.businesshours import add_business_hours, business_hours_between, default_calendar
from trellis.db import db, utcnow
from trellis.events import emit
from trellis.models import Team
from trellis.notifications import notify_from_select
from trellis.settings import get_settings
from trellis.sqlfuncs import utc_minute
from trellis_service.models import SlaPolicy, Ticket

PLUGIN = "service"
STATES = ("met", "on_track", "at_risk", "paused", "breached")
DONE = ("resolved", "closed")
RUNNING = ("new", "open")
#: Roles told about unassigned tickets (besides admins).
POOL_ROLES = ("Service Manager",)
RAISE = {"low": "normal", "normal": "high", "high": "urgent"}


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC (SQLite hands timestamps back naive, in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
        value.astimezone(timezone.utc)


def clock() -> datetime:
    """The current time; tests control it by patching ``trellis_service.sla.utcnow``."""
    return utcnow()


# ------------------------------------------------------------------ at save time


def customer_tier(session: Any, contact_id: int | None) -> str | None:
    """The contact's tier: the value of the customer feature named by the setting
    ``sla_tier_feature`` (offered by another plugin, e.g. scoring), if any."""
    name = get_settings(PLUGIN)["sla_tier_feature"]
    if contact_id is None or not name or features.get(name) is None:
        return None
    with session.no_autoflush:
        value = features.values(session, name, [contact_id]).get(contact_id)
    return str(value) if value not in (None, "") else None


def policy_for(session: Any, priority: str | None,
               tier: str | None = None) -> SlaPolicy | None:
    """The policy of this priority for the tier, else the one without a tier."""
    with session.no_autoflush:
        found = session.scalars(select(SlaPolicy).where(
            SlaPolicy.priority == priority,
            or_(SlaPolicy.tier.is_(None), SlaPolicy.tier == tier) if tier is not None
            else SlaPolicy.tier.is_(None))).all()
    return next((p for p in found if p.tier is not None), found[0] if found else None)


def policy_validate(policy: SlaPolicy) -> dict[str, list[str]]:
    """One policy per priority and tier (the unique index cannot see empty tiers)."""
    from sqlalchemy.orm import object_session

    session = object_session(policy)
    errors: dict[str, list[str]] = {}
    policy.tier = (policy.tier or "").strip() or None
    if session is not None:
        with session.no_autoflush:
            clash = session.scalar(select(SlaPolicy.id).where(
                SlaPolicy.priority == policy.priority,
                SlaPolicy.tier.is_(None) if policy.tier is None else SlaPolicy.tier == policy.tier,
                SlaPolicy.id != (policy.id or 0)).limit(1))
        if clash is not None:
            errors["priority"] = ["There is already a policy for this priority and tier."]
    for field in ("first_response_hours", "resolution_hours"):
        value = getattr(policy, field)
        if value is None or value <= 0:
            errors[field] = ["Must be more than 0."]
    return errors


def set_due_times(session: Any, ticket: Ticket) -> None:
    """Both due times from the creation time, the policy of the ticket's priority
    (and its customer's tier) and the business hours spent paused."""
    policy = policy_for(session, ticket.priority, customer_tier(session, ticket.contact_id))
    if policy is None:
        ticket.first_response_due_at = ticket.resolution_due_at = None
        return
    cal = default_calendar(session)
    created = utc(ticket.created_on) or clock()
    if ticket.first_response_at is None:
        ticket.first_response_due_at = add_business_hours(cal, created,
                                                          policy.first_response_hours)
    ticket.resolution_due_at = add_business_hours(
        cal, created, policy.resolution_hours + (ticket.sla_paused_hours or 0.0))


def status_changed(session: Any, ticket: Ticket, old: str | None, new: str,
                   at: datetime) -> None:
    """Pause the resolution clock on entering ``pending``; resume it on leaving."""
    if new == "pending" and old != "pending":
        ticket.sla_paused_at = at
    elif old == "pending" and new != "pending" and ticket.sla_paused_at is not None:
        paused, due = utc(ticket.sla_paused_at), utc(ticket.resolution_due_at)
        if due is not None and paused < due:
            cal = default_calendar(session)
            ticket.sla_paused_hours = (ticket.sla_paused_hours or 0.0) + \
                business_hours_between(cal, paused, at)
            set_due_times(session, ticket)
        ticket.sla_paused_at = None


def elapsed(session: Any, start: datetime | None, end: datetime | None) -> float | None:
    """Business hours between two moments on the default calendar (reports)."""
    if start is None or end is None:
        return None
    return round(business_hours_between(default_calendar(session), utc(start), utc(end)), 4)


# ------------------------------------------------------------------ state


def warn_threshold(session: Any, at: datetime) -> datetime:
    """Due at or before this instant: at risk (``sla_warn_minutes`` business minutes on)."""
    minutes = get_settings(PLUGIN)["sla_warn_minutes"]
    return add_business_hours(default_calendar(session), at, minutes / 60)


def _conditions(at: datetime, threshold: datetime) -> tuple[Any, Any]:
    """(breached, at risk) for tickets whose clocks run, as SQL conditions."""
    fr_open = and_(Ticket.first_response_at.is_(None), Ticket.first_response_due_at.is_not(None),
                   Ticket.status.not_in(DONE))
    res_running = and_(Ticket.status.in_(RUNNING), Ticket.resolution_due_at.is_not(None))
    breached = or_(and_(fr_open, Ticket.first_response_due_at <= at),
                   and_(res_running, Ticket.resolution_due_at <= at))
    at_risk = and_(not_(breached), or_(and_(fr_open, Ticket.first_response_due_at <= threshold),
                                       and_(res_running, Ticket.resolution_due_at <= threshold)))
    return breached, at_risk


def state_expression(at: datetime, threshold: datetime) -> Any:
    """The ticket's SLA state as a SQL ``CASE`` over ``service_ticket``."""
    breached, at_risk = _conditions(at, threshold)
    return case(
        (and_(Ticket.first_response_due_at.is_(None), Ticket.resolution_due_at.is_(None)), None),
        (Ticket.sla_breached_at.is_not(None), "breached"),
        (Ticket.first_response_at > Ticket.first_response_due_at, "breached"),
        (Ticket.resolved_at > Ticket.resolution_due_at, "breached"),
        (Ticket.status.in_(DONE), "met"),
        (breached, "breached"),
        (Ticket.status == "pending", "paused"),
        (at_risk, "at_risk"),
        else_="on_track")


def states(session: Any, ids: list[int], at: datetime | None = None) -> dict[int, str | None]:
    """``{ticket_id: state}`` for these tickets, in one query."""
    at = utc(at) or clock()
    expr = state_expression(at, warn_threshold(session, at))
    return dict(session.execute(select(Ticket.id, expr).where(Ticket.id.in_(ids))).all())


# ------------------------------------------------------------------ the periodic job


def _message(kind: str) -> tuple[Any, Any, Any]:
    ref = literal("#") + cast(Ticket.id, String) + literal(" ") + Ticket.subject
    if kind == "at_risk":
        subject = literal("SLA at risk: ticket ") + ref
        body = literal("This ticket is about to miss its SLA; resolution due ") + \
            utc_minute(Ticket.resolution_due_at) + literal(" UTC.")
    elif kind == "breached":
        subject = literal("SLA breached: ticket ") + ref
        body = literal("This ticket missed its SLA; resolution was due ") + \
            utc_minute(Ticket.resolution_due_at) + literal(" UTC.")
    else:
        subject = literal("Escalation: ticket ") + ref + literal(" breached its SLA")
        body = literal("A ticket of your team missed its SLA and was escalated to you.")
    link = literal("/ticketview/show/") + cast(Ticket.id, String)
    return subject, body, link


def _row(user_id: Any, kind: str) -> Any:
    subject, body, link = _message(kind)
    key = literal(f"{PLUGIN}.sla:") + cast(Ticket.id, String) + literal(f":{kind}")
    return select(user_id.label("user_id"), subject.label("subject"), body.label("body"),
                  link.label("link"), key.label("dedupe_key"))


def _pool() -> Any:
    names = [*POOL_ROLES, current_app.appbuilder.sm.auth_role_admin]
    return (select(assoc_user_role.c.user_id.label("user_id"))
            .join(Role, Role.id == assoc_user_role.c.role_id)
            .join(User, User.id == assoc_user_role.c.user_id)
            .where(Role.name.in_(names), User.active.is_(True))
            .distinct().subquery())


def check_sla(now: Any = None) -> dict[str, int]:  # noqa: C901 - one pass, in SQL
    """Job ``service.check_sla``: flag, notify and escalate tickets at risk of
    missing or past their SLA.  ``now`` (ISO string or datetime) is for tests.
    Idempotent: each ticket is flagged, notified and escalated once."""
    session = db.session
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    at = utc(now) or clock()
    threshold = warn_threshold(session, at)
    breached, at_risk = _conditions(at, threshold)
    kinds = {"at_risk": (at_risk, Ticket.sla_at_risk_at),
             "breached": (breached, Ticket.sla_breached_at)}
    settings = get_settings(PLUGIN)
    counts = {"at_risk": 0, "breached": 0, "escalated": 0, "notified": 0}
    new_events: list[tuple[str, int]] = []
    pool = _pool()
    for kind, (cond, flag) in kinds.items():
        fresh = and_(cond, flag.is_(None))
        ids = session.scalars(select(Ticket.id).where(fresh).order_by(Ticket.id)).all()
        new_events += [(kind, i) for i in ids]
        counts[kind] = len(ids)
        if not ids:
            continue
        owned = _row(Ticket.assignee_id, kind).where(fresh, Ticket.assignee_id.is_not(None))
        unowned = (_row(pool.c.user_id, kind).select_from(Ticket).join(pool, literal(True))
                   .where(fresh, Ticket.assignee_id.is_(None)).distinct())
        for rows in (owned, unowned):
            counts["notified"] += max(notify_from_select(session, rows, kind="warning",
                                                         plugin=PLUGIN), 0)
        session.execute(update(Ticket).where(Ticket.id.in_(ids)).values({flag: at})
                        .execution_options(synchronize_session=False))

    # Escalate breached tickets once: notify the team's manager, raise the priority,
    # optionally hand the ticket to the manager.
    to_escalate = and_(Ticket.sla_breached_at.is_not(None), Ticket.sla_escalated_at.is_(None),
                       Ticket.status.not_in(DONE))
    managers = (_row(Team.manager_id, "escalated").select_from(Ticket)
                .join(Team, Team.id == Ticket.team_id)
                .where(to_escalate, Team.manager_id.is_not(None),
                       or_(Ticket.assignee_id.is_(None), Team.manager_id != Ticket.assignee_id)))
    counts["notified"] += max(notify_from_select(session, managers, kind="warning",
                                                 plugin=PLUGIN), 0)
    values: dict[Any, Any] = {Ticket.sla_escalated_at: at}
    if settings["escalate_raise_priority"]:
        values[Ticket.priority] = case(*[(Ticket.priority == k, v) for k, v in RAISE.items()],
                                       else_=Ticket.priority)
    if settings["escalate_reassign"]:
        manager = select(Team.manager_id).where(Team.id == Ticket.team_id).scalar_subquery()
        values[Ticket.assignee_id] = func.coalesce(manager, Ticket.assignee_id)
    counts["escalated"] = session.execute(
        update(Ticket).where(to_escalate).values(values)
        .execution_options(synchronize_session=False)).rowcount or 0
    session.commit()
    for kind, ticket_id in new_events:
        emit(f"ticket.sla_{kind}", {"ticket_id": ticket_id}, plugin=PLUGIN)
    return counts
