"""Journeys: marketing automation with durable per-contact state.

A :class:`Journey` enrols contacts on a trigger and runs its ``steps`` for each,
keeping where every contact is in :class:`JourneyEnrolment` (step, since when,
status, what triggered it).  The rq job ``marketing.journeys`` (every minute,
:func:`tick`) does all the work set-based: per journey and per step one or two
statements, whatever the number of contacts; ``tick(now=…)`` takes the time, so
tests (and catch-up runs) control the clock.

Triggers (``trigger_kind``):

* ``activity``: a timeline activity of ``trigger_activity_type`` (``product.viewed``)
  whose payload has the ``trigger_payload`` keys/values; the activity's payload
  becomes the enrolment's context (``$trigger.product_id``) and its time the
  entry time;
* ``event``: a Trellis event named ``trigger_event`` whose data has a
  ``contact_id``, or a contact's own record event (``contact.created``,
  ``deal.won``, ``order.created``…);
* ``segment``: contacts entering ``trigger_segment_id`` (its members never
  enrolled, and with re-entry those who entered it again since the last tick)
  or, with ``trigger_segment_change = "left"``, those who left it since the last
  tick (:func:`trellis_marketing.segments.track`).  Dates such as renewals are
  segment conditions.

A contact is enrolled once (``UNIQUE (journey_id, contact_id, entry_no)``); with
``allow_reentry`` again after the previous entry finished.

Steps (JSON objects with a ``type``):

* ``{"type": "wait", "hours": 24}`` (``minutes``, ``hours``, ``days``);
* ``{"type": "wait_until", "until": "purchase", "product": "$trigger.product_id",
  "hours": 24, "then": "exit"}``: wait up to the duration for a purchase (of that
  product) or an activity (``"until": "activity", "activity_type": …``); when it
  happens ``then`` (``exit`` or ``continue``), when time runs out the next step;
* ``{"type": "condition", "rules": {…}, "else": "exit"}``: a condition tree
  (:mod:`trellis.conditions`); false goes to ``else`` (``exit`` or a step index);
* ``{"type": "send_email", "template_id": 3}``: one message per contact and step
  (unique), sent by ``marketing.send_journey_messages`` like a campaign's;
* ``{"type": "action", "action": "core.add_tag", "params": {"tag": "VIP"}}``: any
  action of :mod:`trellis.actions` (add/remove tag, update a field,
  ``sales.create_task``…), run in the same transaction as the step's advance;
* ``{"type": "webhook", "url": "https://…"}``: the contacts reaching it are POSTed
  as JSON by the job ``marketing.journey_webhook`` (through
  :mod:`trellis.netguard`, after the step's transaction commits).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, insert, literal, select, update

from trellis import actions, conditions, consent, purchases
from trellis.db import db, utcnow
from trellis.jobs import enqueue
from trellis.models import Activity, Contact
from trellis_marketing import segments
from trellis_marketing.models import (SEGMENT_CHANGES, TRIGGER_KINDS, EmailTemplate, Journey,
                                      JourneyEnrolment, Message, Segment)

E = JourneyEnrolment
STEP_TYPES = ("wait", "wait_until", "condition", "send_email", "action", "webhook")
WEBHOOK_JOB = "marketing.journey_webhook"
SEND_JOB = "marketing.send_journey_messages"
MAX_WAIT = timedelta(days=366)


# ------------------------------------------------------------------ validation


def _duration(step: dict[str, Any]) -> timedelta | None:
    total = timedelta()
    found = False
    for unit in ("minutes", "hours", "days"):
        value = step.get(unit)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            return None
        total += timedelta(**{unit: value})
        found = True
    return total if found and total <= MAX_WAIT else None


def _product(value: Any) -> bool:
    return value is None or value == "$trigger.product_id" or (
        isinstance(value, int) and not isinstance(value, bool) and value > 0)


def steps_errors(steps: Any, session: Any = None) -> dict[str, list[str]]:
    """``{"steps.<i>.<key>": [messages]}`` for what is wrong with ``steps``."""
    if not isinstance(steps, list) or not steps:
        return {"steps": ["Must be a non-empty list of steps."]}
    if len(steps) > 50:
        return {"steps": ["At most 50 steps."]}
    errors: dict[str, list[str]] = {}
    for i, step in enumerate(steps):
        at = f"steps.{i}"
        if not isinstance(step, dict):
            errors[at] = ["Must be an object with a type."]
            continue
        kind = step.get("type")
        if kind not in STEP_TYPES:
            errors[f"{at}.type"] = [f"Must be one of: {', '.join(STEP_TYPES)}."]
            continue
        if kind in ("wait", "wait_until") and _duration(step) is None:
            errors[f"{at}.hours"] = ["Give a duration of up to a year in minutes, hours "
                                     "and/or days."]
        if kind == "wait_until":
            if step.get("until") not in ("purchase", "activity"):
                errors[f"{at}.until"] = ["Must be one of: purchase, activity."]
            if step.get("until") == "activity" and not isinstance(step.get("activity_type"),
                                                                  str):
                errors[f"{at}.activity_type"] = ["Missing data for required field."]
            if not _product(step.get("product")):
                errors[f"{at}.product"] = ["Must be a product id or $trigger.product_id."]
            if step.get("then", "exit") not in ("exit", "continue"):
                errors[f"{at}.then"] = ["Must be one of: exit, continue."]
        if kind == "condition":
            for path, messages in conditions.validate(step.get("rules")).items():
                errors[f"{at}.rules" + ("" if path == "(root)" else f".{path}")] = messages
            other = step.get("else", "exit")
            if other != "exit" and (isinstance(other, bool) or not isinstance(other, int)
                                    or not 0 <= other < len(steps)):
                errors[f"{at}.else"] = ["Must be exit or a step index."]
        if kind == "send_email":
            tid = step.get("template_id")
            if isinstance(tid, bool) or not isinstance(tid, int) or (
                    session is not None and session.get(EmailTemplate, tid) is None):
                errors[f"{at}.template_id"] = ["Must be the id of an e-mail template."]
        if kind == "webhook":
            from trellis import netguard

            try:
                netguard.literal_check(str(step.get("url") or ""))
            except netguard.BlockedTarget as exc:
                errors[f"{at}.url"] = [str(exc)]
        if kind == "action":
            try:
                actions.validate_params(str(step.get("action")), "contact",
                                        step.get("params", {}))
            except actions.ActionError as exc:
                for key, messages in exc.messages.items():
                    errors[f"{at}.{key if key == 'action' else 'params.' + key}"] = messages
    return errors


def journey_validate(journey: Journey) -> dict[str, list[str]]:
    """``Journey`` validate: a trigger that can fire and valid steps."""
    errors: dict[str, list[str]] = {}
    kind = journey.trigger_kind or "activity"
    if kind not in TRIGGER_KINDS:
        errors["trigger_kind"] = [f"Must be one of: {', '.join(TRIGGER_KINDS)}."]
    elif kind == "activity" and not (journey.trigger_activity_type or "").strip():
        errors["trigger_activity_type"] = ["Required for an activity trigger."]
    elif kind == "event" and not (journey.trigger_event or "").strip():
        errors["trigger_event"] = ["Required for an event trigger."]
    elif kind == "segment" and journey.trigger_segment_id is None:
        errors["trigger_segment_id"] = ["Required for a segment trigger."]
    if (journey.trigger_segment_change or "entered") not in SEGMENT_CHANGES:
        errors["trigger_segment_change"] = [f"Must be one of: {', '.join(SEGMENT_CHANGES)}."]
    payload = journey.trigger_payload
    if payload is not None and (not isinstance(payload, dict) or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in payload.values())):
        errors["trigger_payload"] = ["Must be an object of texts or whole numbers."]
    errors.update(steps_errors(journey.steps, db.session))
    return errors


def journey_before_save(session: Any, journey: Journey, action: str) -> None:
    if action != "deleted":
        journey.trigger_kind = journey.trigger_kind or "activity"
        journey.trigger_segment_change = journey.trigger_segment_change or "entered"


# ------------------------------------------------------------------ enrolment


def _not_enrolled(journey: Journey, contact_id: Any) -> Any:
    """SQL: the contact may enter (never entered; with re-entry: not in it now)."""
    mine = and_(E.journey_id == journey.id, E.contact_id == contact_id)
    if journey.allow_reentry:
        return ~exists().where(mine, E.status == "active")
    return ~exists().where(mine)


def _entry_no(journey: Journey, contact_id: Any) -> Any:
    if not journey.allow_reentry:
        return literal(1)
    return select(func.coalesce(func.max(E.entry_no), 0) + 1).where(
        E.journey_id == journey.id, E.contact_id == contact_id).scalar_subquery()


def _insert(session: Any, rows: Any) -> int:
    result = session.execute(insert(E).from_select(
        ["journey_id", "contact_id", "entry_no", "status", "step", "step_started_at",
         "entered_at", "context"], rows).returning(E.id))
    return len(result.all())


def enrol(session: Any, journey: Journey, now: datetime) -> int:
    """Enrol the contacts an activity trigger found since the last tick (segment
    triggers enrol in :func:`track_segments`, event triggers in :func:`on_event`)."""
    if journey.trigger_kind == "activity":
        top = session.scalar(select(func.max(Activity.id))) or 0
        where = [Activity.id > (journey.cursor_activity_id or 0), Activity.id <= top,
                 Activity.type == journey.trigger_activity_type,
                 Activity.contact_id.is_not(None), Activity.occurred_at <= now]
        for key, value in (journey.trigger_payload or {}).items():
            where.append(Activity.payload[key].as_string() == str(value))
        first = (select(func.min(Activity.id).label("aid")).where(*where)
                 .group_by(Activity.contact_id).subquery())
        rows = (select(literal(journey.id), Activity.contact_id,
                       _entry_no(journey, Activity.contact_id), literal("active"), literal(0),
                       Activity.occurred_at, Activity.occurred_at, Activity.payload)
                .where(Activity.id.in_(select(first.c.aid)),
                       _not_enrolled(journey, Activity.contact_id)))
        count = _insert(session, rows)
        journey.cursor_activity_id = top
        return count
    return 0


def _enrol_ids(session: Any, journey: Journey, contact_ids: Any, now: datetime,
               context: dict[str, Any] | None) -> int:
    """Enrol the contacts ``contact_ids`` (a ``select`` or a list) who may enter."""
    if isinstance(contact_ids, list) and len(contact_ids) > 5000:  # bound parameters
        return sum(_enrol_ids(session, journey, contact_ids[i:i + 5000], now, context)
                   for i in range(0, len(contact_ids), 5000))
    ts = E.step_started_at.type
    rows = (select(literal(journey.id), Contact.id, _entry_no(journey, Contact.id),
                   literal("active"), literal(0), literal(now, type_=ts),
                   literal(now, type_=ts), literal(context, type_=E.context.type))
            .where(Contact.id.in_(contact_ids), _not_enrolled(journey, Contact.id)))
    return _insert(session, rows)


def enrol_segment(session: Any, journey: Journey, segment: Segment, now: datetime,
                  entered: list[int], left: list[int]) -> int:
    """Enrol for a segment trigger, given who entered and left it this tick
    (:func:`trellis_marketing.segments.track`).

    ``entered``: the members never enrolled (so a new journey takes in the
    segment's current members), and with re-entry those who entered again;
    ``left``: those who left it.
    """
    context = {"segment_id": segment.id}
    if journey.trigger_segment_change == "left":
        return _enrol_ids(session, journey, left, now, context) if left else 0
    members = segments.members(segment).subquery()
    never = (select(members.c.contact_id).where(~exists().where(
        E.journey_id == journey.id, E.contact_id == members.c.contact_id)))
    count = _enrol_ids(session, journey, never, now, context)
    if journey.allow_reentry and entered:
        count += _enrol_ids(session, journey, entered, now, context)
    return count


def track_segments(session: Any, journeys: list[Journey], now: datetime) -> int:
    """Track the segments the active journeys are triggered by, and those that
    fire events, and enrol each journey from its segment's changes, segment by
    segment in one transaction each (a change is never seen without its
    enrolments).  The number of contacts enrolled."""
    watching: dict[int, list[Journey]] = {}
    for journey in journeys:
        if journey.trigger_kind == "segment" and journey.trigger_segment_id:
            watching.setdefault(journey.trigger_segment_id, []).append(journey)
    ids = set(watching) | set(session.scalars(select(Segment.id).where(
        Segment.emit_events.is_(True))))
    enrolled = 0
    for segment in session.scalars(select(Segment).where(Segment.id.in_(ids))
                                   .order_by(Segment.id)).all():
        entered, left = segments.track(session, segment, now)
        for journey in watching.get(segment.id, []):
            enrolled += enrol_segment(session, journey, segment, now, entered, left)
        session.commit()
    return enrolled


def enrol_contacts(session: Any, journey: Journey, contact_ids: list[int],
                   now: datetime) -> int:
    """Enrol the contacts ``contact_ids`` who may enter (an automation action)."""
    return _enrol_ids(session, journey, list(contact_ids), now, None)


def enrol_contact(session: Any, journey: Journey, contact_id: int, context: dict[str, Any],
                  now: datetime) -> int:
    """Enrol one contact (an event trigger); 0 when they may not enter."""
    return _enrol_ids(session, journey, [contact_id], now, context)


def on_event(event: Any) -> None:
    """Event handler: enrol the event's contact in journeys triggered by it."""
    payload = event.data or {}
    contact_id = payload.get("contact_id")
    if contact_id is None and event.model == "contact":
        contact_id = event.record_id
    try:
        contact_id = int(contact_id)
    except (TypeError, ValueError):
        return
    session = db.session
    journeys = session.scalars(select(Journey).where(
        Journey.active.is_(True), Journey.trigger_kind == "event",
        Journey.trigger_event == event.name)).all()
    if not journeys:
        return
    context = {k: v for k, v in payload.items() if isinstance(v, (str, int, float, bool))}
    context.setdefault("contact_id", contact_id)
    for journey in journeys:
        enrol_contact(session, journey, contact_id, context, utcnow())
    session.commit()


# ------------------------------------------------------------------ steps


def _ids(session: Any, journey: Journey, step: int, *where: Any) -> list[int]:
    return list(session.scalars(select(E.id).where(
        E.journey_id == journey.id, E.status == "active", E.step == step, *where)))


def _move(session: Any, journey: Journey, ids: list[int], target: int, now: datetime) -> int:
    if not ids:
        return 0
    values: dict[str, Any] = {"step": target, "step_started_at": now}
    if target >= len(journey.steps):
        values.update(status="done", finished_at=now)
    session.execute(update(E).where(E.id.in_(ids)).values(**values),
                    execution_options={"synchronize_session": False})
    return len(ids)


def _exit(session: Any, ids: list[int], reason: str, now: datetime) -> int:
    if not ids:
        return 0
    session.execute(update(E).where(E.id.in_(ids)).values(
        status="exited", finished_at=now, exit_reason=reason[:100]),
        execution_options={"synchronize_session": False})
    return len(ids)


def _happened(step: dict[str, Any], now: datetime) -> Any:
    """SQL: what a ``wait_until`` step waits for happened since the step began."""
    if step.get("until") == "activity":
        return exists().where(Activity.contact_id == E.contact_id,
                              Activity.type == step["activity_type"],
                              Activity.occurred_at >= E.step_started_at,
                              Activity.occurred_at <= now)
    lines = purchases.lines().subquery()
    where = [lines.c.contact_id == E.contact_id, lines.c.ordered_at >= E.step_started_at,
             lines.c.ordered_at <= now]
    product = step.get("product")
    if product == "$trigger.product_id":
        where.append(lines.c.product_id == E.context["product_id"].as_integer())
    elif product is not None:
        where.append(lines.c.product_id == int(product))
    return exists(select(lines.c.contact_id).where(*where))


def _run_step(session: Any, journey: Journey, i: int, step: dict[str, Any],
              now: datetime) -> int:
    kind = step["type"]
    nxt = i + 1
    if kind == "wait":
        due = _ids(session, journey, i, E.step_started_at <= now - _duration(step))
        return _move(session, journey, due, nxt, now)
    if kind == "wait_until":
        happened = _happened(step, now)
        hit = _ids(session, journey, i, happened)
        moved = (_exit(session, hit, f"{step['until']} during the wait", now)
                 if step.get("then", "exit") == "exit" else _move(session, journey, hit, nxt, now))
        timed_out = _ids(session, journey, i, E.step_started_at <= now - _duration(step))
        return moved + _move(session, journey, timed_out, nxt, now)
    if kind == "condition":
        waiting = _ids(session, journey, i)
        if not waiting:
            return 0
        yes = set(session.scalars(select(E.id).where(
            E.id.in_(waiting), conditions.expression(step["rules"], E.contact_id))))
        no = [e for e in waiting if e not in yes]
        moved = _move(session, journey, sorted(yes), nxt, now)
        other = step.get("else", "exit")
        if other == "exit":
            return moved + _exit(session, no, "condition not met", now)
        return moved + _move(session, journey, no, int(other), now)
    if kind == "send_email":
        waiting = _ids(session, journey, i)
        if not waiting:
            return 0
        from trellis_marketing.campaigns import PURPOSE, never_bounced

        key = cast(E.id, String) + literal(f":{i}")
        rows = (select(literal(journey.id), key, literal(int(step["template_id"])), E.contact_id,
                       Contact.email, literal("queued"), literal(now, type_=Message.created_on.type))
                .join(Contact, Contact.id == E.contact_id)
                .where(E.id.in_(waiting), Contact.email.is_not(None),
                       func.trim(Contact.email) != "",
                       consent.allowed(E.contact_id, "email", PURPOSE),
                       never_bounced(E.contact_id),
                       ~exists().where(Message.journey_step_key == key)))
        queued = session.execute(insert(Message).from_select(
            ["journey_id", "journey_step_key", "template_id", "contact_id", "email", "status",
             "created_on"], rows).returning(Message.id)).all()
        if queued:
            enqueue(SEND_JOB)
        return _move(session, journey, waiting, nxt, now)
    if kind == "webhook":
        waiting = _ids(session, journey, i)
        if not waiting:
            return 0
        # the call goes out after this transaction commits (the outbox), once per batch
        enqueue(WEBHOOK_JOB, journey_id=journey.id, step=i, enrolment_ids=waiting)
        return _move(session, journey, waiting, nxt, now)
    if kind == "action":
        waiting = _ids(session, journey, i)
        if not waiting:
            return 0
        contacts = sorted(set(session.scalars(select(E.contact_id).where(E.id.in_(waiting)))))
        actions.run(session, step["action"], "contact", contacts, step.get("params") or {})
        return _move(session, journey, waiting, nxt, now)
    return 0


def advance(session: Any, journey: Journey, now: datetime) -> int:
    """Run every due step of the journey, repeatedly until nobody moves (a contact
    goes through consecutive immediate steps in one tick)."""
    total = 0
    for _ in range(len(journey.steps) + 1):
        moved = sum(_run_step(session, journey, i, step, now)
                    for i, step in enumerate(journey.steps))
        total += moved
        if not moved:
            break
    return total


def tick(now: str | datetime | None = None) -> dict[str, int]:
    """Job ``marketing.journeys``: enrol and advance every active journey at ``now``
    (default: the clock; an ISO timestamp from a job's arguments works too)."""
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    now = now or utcnow()
    session = db.session
    enrolled = moved = 0
    with conditions.as_of(now):
        active = session.scalars(select(Journey).where(Journey.active.is_(True))
                                 .order_by(Journey.id)).all()
        enrolled += track_segments(session, list(active), now)
        for journey in active:
            enrolled += enrol(session, journey, now)
            moved += advance(session, journey, now)
            session.commit()
    return {"enrolled": enrolled, "moved": moved}


def call_webhook(journey_id: int, step: int, enrolment_ids: list[int]) -> dict[str, int]:
    """Job ``marketing.journey_webhook``: POST the contacts that reached a webhook
    step, as JSON, through :mod:`trellis.netguard` (no internal hosts).  A refused
    target or a non-2xx answer raises, so the outbox retries the job."""
    import json

    from trellis import netguard

    session = db.session
    journey = session.get(Journey, journey_id)
    if journey is None:
        return {"contacts": 0}
    url = journey.steps[step]["url"]
    rows = session.execute(select(E.id, E.contact_id, E.context, Contact.email)
                           .join(Contact, Contact.id == E.contact_id)
                           .where(E.id.in_(enrolment_ids)).order_by(E.id)).all()
    body = json.dumps({"journey": {"id": journey.id, "name": journey.name}, "step": step,
                       "contacts": [{"enrolment_id": r[0], "contact_id": r[1],
                                     "email": r[3], "trigger": r[2]} for r in rows]})
    answer = netguard.request("POST", url, body=body,
                              headers={"Content-Type": "application/json",
                                       "X-Trellis-Journey": str(journey.id)})
    if not 200 <= answer.status < 300:
        raise RuntimeError(f"webhook {url} answered {answer.status}")
    return {"contacts": len(rows), "status": answer.status}


def send_messages(batch_size: int = 50) -> dict[str, int]:
    """Job ``marketing.send_journey_messages``: send queued e-mail outside campaigns
    (journey steps, the ``marketing.send_template`` action)."""
    from trellis.settings import get_settings
    from trellis_marketing.campaigns import PLUGIN, Renderer, _Throttle, claim, send_claimed

    session = db.session
    throttle = _Throttle(get_settings(PLUGIN)["send_rate_per_minute"])
    renderer = Renderer(session)
    totals = {"sent": 0, "failed": 0, "bounced": 0, "skipped": 0}
    while True:
        # journey e-mail and automation's marketing.send_template: no campaign
        token, ids = claim(session, Message.campaign_id.is_(None), batch_size)
        if not ids:
            return totals
        for key, value in send_claimed(session, token, ids, throttle, renderer, {}).items():
            totals[key] += value


