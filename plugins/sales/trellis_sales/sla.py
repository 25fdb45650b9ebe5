"""First-response SLA for leads: a new lead must be contacted within
``lead_response_hours`` business hours (the core's default business calendar).

* On create, :func:`lead_saved` sets ``response_due_at``.
* ``first_contacted_at`` is set the first time the lead is contacted: its
  status leaves ``new`` (:func:`lead_saved`), or a call, e-mail or meeting task
  on it is marked done (:func:`task_saved`).
* The periodic job ``sales.check_lead_sla`` (:func:`check_lead_sla`) flags, in
  set-based SQL, open leads due within ``lead_response_warn_minutes`` business
  minutes (*at risk*) or already past due (*breached*): it notifies the owner
  (unassigned leads: the sales managers and admins), escalates each lead once
  (``sla_escalated_at``) to the managers of the owner's teams, and fires
  ``lead.sla_at_risk`` / ``lead.sla_breached`` once per lead.
* :func:`sla_state` / :func:`state_expression`: ``met``, ``on_track``,
  ``at_risk``, ``breached`` (``None`` for leads without an SLA), returned as
  ``sla_state`` by the lead API; :func:`sla_report` is the share of leads
  contacted within the SLA.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app, request
from flask_appbuilder.api import expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_appbuilder.security.sqla.models import Role, User, assoc_user_role
from sqlalchemy import String, and_, case, cast, func, literal, select, update

from trellis import rules
from trellis.businesshours import add_business_hours, default_calendar
from trellis.db import db, utcnow
from trellis.events import emit
from trellis.models import Team, team_member
from trellis.notifications import notify_from_select
from trellis.settings import get_settings
from trellis.sqlfuncs import utc_minute
from trellis_sales.models import Lead, Task

PLUGIN = "sales"
#: Task kinds that count as contacting the lead when done.
CONTACT_KINDS = ("call", "email", "meeting")
STATES = ("met", "on_track", "at_risk", "breached")
#: Roles told about unassigned leads (besides admins).
POOL_ROLES = ("Sales Manager",)


def _utc(value: datetime | None) -> datetime | None:
    """Aware UTC (SQLite hands timestamps back naive, in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
        value.astimezone(timezone.utc)


def _changed(obj: Any, attr: str) -> bool:
    from sqlalchemy import inspect

    return inspect(obj).attrs[attr].history.has_changes()


# ------------------------------------------------------------------ at save time


def lead_saved(session: Any, lead: Lead, action: str) -> None:
    """From ``lead_before_save``: the due time on create, the first contact on a
    status change away from ``new``."""
    if action == "deleted":
        return
    now = utcnow()
    if action == "created" and lead.response_due_at is None:
        hours = get_settings(PLUGIN)["lead_response_hours"]
        created = _utc(lead.created_on) or now
        lead.created_on = created
        lead.response_due_at = add_business_hours(default_calendar(session), created, hours)
    if lead.first_contacted_at is None and (lead.status or "new") != "new" and (
            action == "created" or _changed(lead, "status")):
        lead.first_contacted_at = _utc(lead.created_on) if action == "created" else now


def task_saved(session: Any, task: Task, action: str) -> None:
    """From ``task_before_save``: a call/e-mail/meeting done on a lead contacts it."""
    if action == "deleted" or task.done_at is None or task.kind not in CONTACT_KINDS:
        return
    if action != "created" and not _changed(task, "done_at"):
        return
    with session.no_autoflush:
        lead = task.lead if task.lead is not None else (
            session.get(Lead, task.lead_id) if task.lead_id is not None else None)
    if lead is not None and lead.first_contacted_at is None:
        lead.first_contacted_at = min(_utc(task.done_at), utcnow())


# ------------------------------------------------------------------ state


def warn_threshold(session: Any, now: datetime) -> datetime:
    """Leads due at or before this instant are at risk: ``lead_response_warn_minutes``
    business minutes after ``now``, on the default calendar."""
    minutes = get_settings(PLUGIN)["lead_response_warn_minutes"]
    return add_business_hours(default_calendar(session), now, minutes / 60)


def sla_state(lead: Any, now: datetime, threshold: datetime) -> str | None:
    """``met``, ``on_track``, ``at_risk`` or ``breached`` (``None``: no SLA)."""
    due, contacted = _utc(lead.response_due_at), _utc(lead.first_contacted_at)
    if due is None:
        return None
    if contacted is not None:
        return "met" if contacted <= due else "breached"
    if (lead.status or "new") != "new":
        return None  # closed without a recorded contact (before the SLA existed)
    if due <= now:
        return "breached"
    return "at_risk" if due <= threshold else "on_track"


def state_expression(now: datetime, threshold: datetime) -> Any:
    """:func:`sla_state` as a SQL ``CASE`` over ``sales_lead``."""
    return case(
        (Lead.response_due_at.is_(None), None),
        (Lead.first_contacted_at.is_not(None),
         case((Lead.first_contacted_at <= Lead.response_due_at, "met"), else_="breached")),
        (Lead.status != "new", None),
        (Lead.response_due_at <= now, "breached"),
        (Lead.response_due_at <= threshold, "at_risk"),
        else_="on_track")


class SlaStateMixin:
    """For the lead API: ``sla_state`` in every result (one query per page) and
    ``GET /api/v1/lead/sla_report``."""

    computed_fields = {"sla_state": {
        "type": "string", "nullable": True,
        "enum": ["met", "on_track", "at_risk", "breached", None],
        "description": "first-response SLA: met, on_track, at_risk or breached"}}

    def _sla_fill(self, rows: list[dict[str, Any]], ids: list[Any]) -> None:
        ids = [i for i in ids if i is not None]
        if not ids:
            return
        now = utcnow()
        threshold = warn_threshold(db.session, now)
        states = dict(db.session.execute(select(Lead.id, state_expression(now, threshold))
                                         .where(Lead.id.in_(ids))).all())
        for row, pk in zip(rows, ids):
            row["sla_state"] = states.get(pk)

    def pre_get(self, data: dict[str, Any]) -> None:
        super().pre_get(data)  # type: ignore[misc]
        if isinstance(data.get("result"), dict):
            self._sla_fill([data["result"]], [data.get("id")])

    def pre_get_list(self, data: dict[str, Any]) -> None:
        super().pre_get_list(data)  # type: ignore[misc]
        rows = data.get("result") or []
        self._sla_fill(rows, list(data.get("ids") or [r.get("id") for r in rows]))

    @expose("/sla_report", methods=["GET"])
    @protect()
    @safe
    @permission_name("sla_report")
    def sla_report(self) -> Any:
        """Share of leads contacted within the first-response SLA (record rules apply).

        Query parameters ``since`` and ``until`` (ISO dates or timestamps)
        bound the leads' creation time.
        ---
        get:
          parameters:
          - {in: query, name: since, schema: {type: string}}
          - {in: query, name: until, schema: {type: string}}
          responses:
            200: {description: "counts per state (met, on_track, at_risk, breached) and the share met"}
            400: {$ref: '#/components/responses/400'}
        """
        bounds: dict[str, datetime | None] = {}
        errors: dict[str, list[str]] = {}
        for name in ("since", "until"):
            raw = request.args.get(name)
            try:
                bounds[name] = _utc(datetime.fromisoformat(raw)) if raw else None
            except ValueError:
                errors[name] = ["Use an ISO date, e.g. 2026-11-01."]
        if errors:
            return self.response_400(message=errors)  # type: ignore[attr-defined]
        return self.response(200, **sla_report(db.session, **bounds))  # type: ignore[attr-defined]


def sla_report(session: Any, since: datetime | None = None,
               until: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Counts per SLA state and the share of leads with an SLA contacted in time,
    among those decided (met or breached), in one query."""
    now = _utc(now) or utcnow()
    state = state_expression(now, warn_threshold(session, now)).label("state")
    stmt = rules.restrict(select(state, func.count()).select_from(Lead), Lead)
    if since is not None:
        stmt = stmt.where(Lead.created_on >= since)
    if until is not None:
        stmt = stmt.where(Lead.created_on < until)
    counts = {s: 0 for s in STATES}
    for name, n in session.execute(stmt.group_by(state)).all():
        if name is not None:
            counts[name] = n
    decided = counts["met"] + counts["breached"]
    return {"counts": counts, "leads": sum(counts.values()),
            "within_sla_share": round(counts["met"] / decided, 4) if decided else None}


# ------------------------------------------------------------------ the periodic job


def _key(kind: str) -> Any:
    return literal(f"{PLUGIN}.lead_sla:") + cast(Lead.id, String) + literal(f":{kind}")


def _message(kind: str) -> tuple[Any, Any, Any]:
    name = func.coalesce(Lead.first_name + literal(" "), literal("")) + Lead.last_name
    due = utc_minute(Lead.response_due_at) + literal(" UTC")
    if kind == "at_risk":
        subject = literal("Respond to lead ") + name + literal(" by ") + due
        body = literal("The first-response SLA of this lead runs out at ") + due + literal(".")
    elif kind == "breached":
        subject = literal("First-response SLA missed: lead ") + name
        body = literal("This lead was due to be contacted by ") + due + literal(".")
    else:  # escalated
        subject = literal("Escalation: lead ") + name + literal(" not contacted in time")
        body = literal("The first response to this lead is due by ") + due + \
            literal(" and it has not been contacted yet.")
    link = literal("/leadview/show/") + cast(Lead.id, String)
    return subject, body, link


def _row(user_id: Any, kind: str) -> Any:
    subject, body, link = _message(kind)
    return select(user_id.label("user_id"), subject.label("subject"), body.label("body"),
                  link.label("link"), _key(kind).label("dedupe_key"))


def _pool() -> Any:
    """The users told about unassigned leads: active admins and sales managers."""
    names = [*POOL_ROLES, current_app.appbuilder.sm.auth_role_admin]
    return (select(assoc_user_role.c.user_id.label("user_id"))
            .join(Role, Role.id == assoc_user_role.c.role_id)
            .join(User, User.id == assoc_user_role.c.user_id)
            .where(Role.name.in_(names), User.active.is_(True))
            .distinct().subquery())


def _parse_now(now: Any) -> datetime:
    if now is None:
        return utcnow()
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    return _utc(now)  # type: ignore[return-value]


def check_lead_sla(now: Any = None) -> dict[str, int]:
    """Job ``sales.check_lead_sla``: flag, notify and escalate leads about to miss
    (or past) their first-response SLA.  ``now`` (ISO string or datetime) is for
    tests.  Idempotent: running it twice notifies and escalates once."""
    session = db.session
    now = _parse_now(now)
    threshold = warn_threshold(session, now)
    is_open = and_(Lead.first_contacted_at.is_(None), Lead.status == "new",
                   Lead.response_due_at.is_not(None))
    kinds = {"breached": Lead.response_due_at <= now,
             "at_risk": and_(Lead.response_due_at > now, Lead.response_due_at <= threshold)}
    flagged = Lead.response_due_at <= threshold

    # Newly at risk / newly breached: the lead's flag for that kind is not set yet.
    # The flag, not the notifications, makes each event fire once, even for a
    # lead nobody could be told about.
    flags = {"at_risk": Lead.sla_at_risk_at, "breached": Lead.sla_breached_at}
    new_events: list[tuple[str, int, Any]] = []
    for kind, cond in kinds.items():
        new_events += [(kind, lead_id, owner_id) for lead_id, owner_id in session.execute(
            select(Lead.id, Lead.owner_id).where(is_open, cond, flags[kind].is_(None))
            .order_by(Lead.id))]

    counts = {"at_risk": 0, "breached": 0, "escalated": 0, "notified": 0}

    def notify(rows: Any) -> None:  # some drivers report -1 rows for INSERT ... SELECT
        counts["notified"] += max(notify_from_select(session, rows, kind="warning",
                                                     plugin=PLUGIN), 0)

    pool = _pool()
    for kind, cond in kinds.items():
        owned = _row(Lead.owner_id, kind).where(is_open, cond, Lead.owner_id.is_not(None))
        unowned = (_row(pool.c.user_id, kind).select_from(Lead).join(pool, literal(True))
                   .where(is_open, cond, Lead.owner_id.is_(None)).distinct())
        notify(owned)
        notify(unowned)
        counts[kind] = session.scalar(select(func.count()).select_from(Lead)
                                      .where(is_open, cond)) or 0

    # Escalate once: to the managers of every team the owner belongs to.
    to_escalate = and_(is_open, flagged, Lead.sla_escalated_at.is_(None))
    managers = (_row(Team.manager_id, "escalated").select_from(Lead)
                .join(team_member, team_member.c.user_id == Lead.owner_id)
                .join(Team, Team.id == team_member.c.team_id)
                .where(to_escalate, Team.manager_id.is_not(None),
                       Team.manager_id != Lead.owner_id).distinct())
    notify(managers)
    counts["escalated"] = session.execute(
        update(Lead).where(to_escalate).values(sla_escalated_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0

    for kind in kinds:
        ids = [lead_id for k, lead_id, _ in new_events if k == kind]
        if ids:
            session.execute(update(Lead).where(Lead.id.in_(ids)).values({flags[kind]: now})
                            .execution_options(synchronize_session=False))
    session.commit()
    # after the commit: plain SQL writes are not pending ORM changes, so an emit
    # before it would dispatch at once, even if the commit then failed
    for kind, lead_id, owner_id in new_events:
        emit(f"lead.sla_{kind}", {"lead_id": lead_id, "owner_id": owner_id}, plugin=PLUGIN)
    return counts
