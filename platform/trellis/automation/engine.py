"""Rules at work: saving and versions, triggers, runs, loop stopping, dry runs.

* **Saving** (:func:`save`) checks the definition (:mod:`.definition`), stores it
  on the rule and writes an immutable :class:`AutomationRuleVersion`;
  :func:`restore` makes a new version copying an old one.
* **Events**: :func:`on_event` (a handler of every event, after commit) finds the
  enabled rules listening to the event and queues one ``core.automation_run`` job
  per rule (rq with Redis).  Schedule and date triggers are found by the
  ``core.automation_tick`` job, scheduled every minute by ``trellis scheduler``
  (one leader per site, :mod:`trellis.leader`), which also claims each due rule
  in the database, so a rule never fires twice for one due time.
* **Runs** (:func:`run_rule`): the conditions select the matching records in one
  query, each action runs through :func:`trellis.actions.run` in a savepoint (a
  failing action is logged, the others still run), and the run is logged
  (:class:`AutomationRun`).
* **Loops**: the actions run inside :func:`trellis.events.caused_by` with the chain
  of rules that led to them, so every event they fire carries it.  A rule
  reached again through its own chain, or a chain longer than :data:`MAX_CHAIN`,
  is not run: the run is logged as ``loop_stopped``.
* **Dry runs** (:func:`dry_run`) do everything in a savepoint that is rolled back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import String, cast, exists, insert, literal, select, update

from trellis import actions, conditions, events
from trellis.automation import definition
from trellis.automation.models import (
    AutomationFired,
    AutomationRule,
    AutomationRuleVersion,
    AutomationRun,
)
from trellis.db import db, utcnow

log = logging.getLogger(__name__)

RUN_JOB = "core.automation_run"
TICK_JOB = "core.automation_tick"
#: Rules one event may lead through, each triggering the next, before it is stopped.
MAX_CHAIN = 5
#: Records a dry run takes when none are chosen.
DRY_RUN_LIMIT = 20


class RuleInvalid(ValueError):
    """A rule definition is not valid; ``messages`` is ``{path: [messages]}``."""

    def __init__(self, messages: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items()))
        self.messages = messages


# ------------------------------------------------------------------ rules and versions


def as_definition(rule: AutomationRule) -> dict[str, Any]:
    return {"name": rule.name, "description": rule.description, "model": rule.model,
            "trigger": rule.trigger, "conditions": rule.conditions, "actions": rule.actions,
            "enabled": rule.enabled}


def _next_run(trigger: dict[str, Any], after: datetime) -> datetime | None:
    if trigger["kind"] != "schedule":
        return None
    if trigger.get("interval"):
        return after + timedelta(seconds=int(trigger["interval"]))
    from croniter import croniter

    base = after.astimezone(timezone.utc).replace(tzinfo=None)
    return croniter(trigger["cron"], base).get_next(datetime).replace(tzinfo=timezone.utc)


def _apply(session: Any, rule: AutomationRule, data: dict[str, Any], note: str,
           user_id: int | None) -> AutomationRule:
    now = utcnow()
    was_enabled = bool(rule.enabled)
    trigger_changed = rule.trigger != data["trigger"]
    rule.name, rule.description, rule.model = data["name"], data["description"], data["model"]
    rule.trigger, rule.conditions, rule.actions = data["trigger"], data["conditions"], \
        data["actions"]
    rule.enabled = data["enabled"]
    rule.trigger_kind = data["trigger"]["kind"]
    rule.trigger_event = definition.trigger_event(data["model"], data["trigger"])
    if rule.enabled and (not was_enabled or trigger_changed):
        rule.next_run_at = _next_run(data["trigger"], now)
        rule.active_since = now
    rule.version = (rule.version or 0) + 1 if rule.id else 1
    session.add(rule)
    session.flush()
    session.add(AutomationRuleVersion(rule_id=rule.id, version=rule.version, definition=data,
                                      note=note, created_by=user_id))
    session.flush()
    return rule


def save(session: Any, data: Any, rule: AutomationRule | None = None,
         user_id: int | None = None) -> AutomationRule:
    """Create (``rule=None``) or change a rule from a definition; writes a new
    version.  Raises :class:`RuleInvalid` (nothing changed).  Does not commit."""
    errors = definition.check(data)
    if errors:
        raise RuleInvalid(errors)
    clean = definition.normalised(data)
    if rule is not None and clean == as_definition(rule):
        return rule  # nothing changed: no new version
    return _apply(session, rule or AutomationRule(), clean,
                  "created" if rule is None else "updated", user_id)


def restore(session: Any, rule: AutomationRule, version: int,
            user_id: int | None = None) -> AutomationRule:
    """Make a new version of ``rule`` that copies its version ``version`` (checked
    again: an action its plugin no longer offers is refused)."""
    old = session.scalar(select(AutomationRuleVersion).where(
        AutomationRuleVersion.rule_id == rule.id, AutomationRuleVersion.version == version))
    if old is None:
        raise RuleInvalid({"version": [f"Rule {rule.id} has no version {version}."]})
    errors = definition.check(old.definition)
    if errors:
        raise RuleInvalid(errors)
    return _apply(session, rule, definition.normalised(old.definition),
                  f"restored from {version}", user_id)


# ------------------------------------------------------------------ triggers


def _record_ids(rule: AutomationRule, evt: events.Event) -> list[int]:
    if evt.model == rule.model and evt.record_id is not None:
        raw = [evt.record_id]
    else:
        key = (rule.trigger or {}).get("record_key") or f"{rule.model}_id"
        raw = [(evt.data or {}).get(key)]
    out = []
    for value in raw:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def _field_changed(trigger: dict[str, Any], evt: events.Event) -> bool:
    field = trigger.get("field")
    if not field:
        return True
    change = (evt.changes or {}).get(field)
    if not isinstance(change, dict):
        return False
    if "to" in trigger and _text(change.get("new")) != _text(trigger["to"]):
        return False
    return "from" not in trigger or _text(change.get("old")) == _text(trigger["from"])


def on_event(evt: events.Event) -> None:
    """Handler of every event: queue a run of each enabled rule it triggers."""
    from trellis.jobs import enqueue

    rules = db.session.scalars(select(AutomationRule).where(
        AutomationRule.enabled.is_(True), AutomationRule.trigger_kind.in_(("record", "event")),
        AutomationRule.trigger_event == evt.name).order_by(AutomationRule.id)).all()
    for rule in rules:
        if not _field_changed(rule.trigger or {}, evt):
            continue
        ids = _record_ids(rule, evt)
        if not ids:
            continue
        enqueue(RUN_JOB, rule_id=rule.id, record_ids=ids, trigger=evt.name, event_id=evt.id,
                chain=list(evt.chain or []))


# ------------------------------------------------------------------ runs


def _matching(rule_or_def: Any, ids: list[int] | None) -> list[int]:
    """The records among ``ids`` (``None``: all) matching the rule's conditions."""
    model = rule_or_def["model"] if isinstance(rule_or_def, dict) else rule_or_def.model
    tree = rule_or_def["conditions"] if isinstance(rule_or_def, dict) else rule_or_def.conditions
    trigger = rule_or_def["trigger"] if isinstance(rule_or_def, dict) else rule_or_def.trigger
    if (trigger or {}).get("on") == "deleted" and ids is not None:
        return sorted(set(ids))  # gone: nothing to test, the actions get the ids
    entry = _registry().get(model)
    query = conditions.records(tree, model)
    if ids is not None:
        if not ids:
            return []
        query = query.where(entry.model.id.in_(ids))
    return sorted(db.session.scalars(query.order_by(entry.model.id)))


def _registry() -> Any:
    from trellis.extension import current_trellis

    return current_trellis().registry


def _do_actions(session: Any, model: str, steps: list[dict[str, Any]], ids: list[int],
                chain: list[int]) -> list[dict[str, Any]]:
    """Each action in a savepoint of its own; ``[{"action", "ok", "result"|"error"}]``."""
    outcome = []
    with events.caused_by(chain):
        for step in steps:
            try:
                with session.begin_nested():
                    result = actions.run(session, step["action"], model, ids,
                                         step.get("params") or {})
                    session.flush()  # record events now, inside the chain
                outcome.append({"action": step["action"], "ok": True, "result": result})
            except Exception as exc:  # noqa: BLE001 - logged on the run, the others go on
                log.warning("automation action %s failed: %s", step["action"], exc,
                            exc_info=True)
                outcome.append({"action": step["action"], "ok": False,
                                "error": f"{type(exc).__name__}: {exc}"[:2000]})
    return outcome


def _log(session: Any, rule: AutomationRule, trigger: str, ids: list[int] | None,
         **values: Any) -> AutomationRun:
    run = AutomationRun(rule_id=rule.id, version=rule.version, trigger=trigger[:100],
                        record_ids=list(ids or []), matched_ids=values.pop("matched_ids", []),
                        outcome=values.pop("outcome", []), chain=values.pop("chain", []),
                        dry_run=values.pop("dry_run", False), started_at=values.pop(
                            "started_at", utcnow()), finished_at=utcnow(), **values)
    session.add(run)
    return run


def run_rule(rule_id: int, record_ids: list[int] | None = None, trigger: str = "manual",
             event_id: str | None = None, chain: list[int] | None = None) -> dict[str, Any]:
    """Job ``core.automation_run``: run rule ``rule_id`` on ``record_ids`` (``None``:
    every record matching its conditions), log the run and commit."""
    session = db.session
    chain = [int(c) for c in chain or []]
    rule = session.get(AutomationRule, rule_id)
    if rule is None or not rule.enabled:
        return {"status": "skipped"}
    if event_id and session.scalar(select(AutomationRun.id).where(
            AutomationRun.rule_id == rule.id, AutomationRun.event_id == event_id,
            AutomationRun.dry_run.is_(False))):
        return {"status": "already run"}  # the same event delivered twice
    started = utcnow()
    if rule.id in chain or len(chain) >= MAX_CHAIN:
        why = (f"rule {rule.id} triggered itself through its own actions"
               if rule.id in chain else f"a chain of {len(chain)} rules")
        log.warning("automation loop stopped: %s (chain %s)", why, chain)
        run = _log(session, rule, trigger, record_ids, status="loop_stopped", chain=chain,
                   event_id=event_id, error=f"Loop stopped: {why} (chain {chain}).",
                   started_at=started)
        session.commit()
        return {"status": run.status, "run_id": run.id}
    try:
        matched = _matching(rule, record_ids)
    except conditions.ConditionError as exc:
        run = _log(session, rule, trigger, record_ids, status="failed", chain=chain,
                   event_id=event_id, error=str(exc), started_at=started)
        session.commit()
        return {"status": "failed", "run_id": run.id}
    outcome: list[dict[str, Any]] = []
    if matched:
        outcome = _do_actions(session, rule.model, rule.actions, matched, chain + [rule.id])
    status = "no_match" if not matched else \
        "done" if all(o["ok"] for o in outcome) else "failed"
    errors = [f"{o['action']}: {o['error']}" for o in outcome if not o["ok"]]
    run = _log(session, rule, trigger, record_ids if record_ids is not None else matched,
               matched_ids=matched, outcome=outcome, status=status, chain=chain,
               event_id=event_id, error="\n".join(errors) or None, started_at=started)
    session.commit()
    return {"status": status, "run_id": run.id, "matched": len(matched)}


# ------------------------------------------------------------------ dry run


def _labels(model: str, ids: list[int]) -> dict[int, str]:
    entry = _registry().get(model)
    if not ids:
        return {}
    return {r.id: str(r) for r in db.session.scalars(
        select(entry.model).where(entry.model.id.in_(ids)))}


def dry_run(data: Any, record_ids: list[int] | None = None, limit: int = DRY_RUN_LIMIT,
            rule: AutomationRule | None = None) -> dict[str, Any]:
    """What a rule (``data``, a definition) would do: which of ``record_ids`` (else the
    first ``limit`` matching records the user may see) match, and each action's
    summary, computed in a savepoint rolled back — nothing is written.  A saved
    ``rule`` gets the dry run logged.  Raises :class:`RuleInvalid`."""
    from trellis import rules as record_rules

    errors = definition.check(data)
    if errors:
        raise RuleInvalid(errors)
    clean = definition.normalised(data)
    model = clean["model"]
    entry = _registry().get(model)
    session = db.session
    visible = record_rules.visible_ids(entry.model)
    if record_ids is None:
        query = conditions.records(clean["conditions"], model)
        if visible is not None:
            query = query.where(entry.model.id.in_(visible))
        chosen = list(session.scalars(query.order_by(entry.model.id).limit(limit)))
    else:
        query = select(entry.model.id).where(entry.model.id.in_(record_ids))
        if visible is not None:
            query = query.where(entry.model.id.in_(visible))
        chosen = sorted(session.scalars(query))
    matched = _matching(clean, chosen)
    outcome: list[dict[str, Any]] = []
    if matched:
        savepoint = session.begin_nested()
        try:
            outcome = _do_actions(session, model, clean["actions"], matched,
                                  [rule.id] if rule is not None else [])
        finally:
            savepoint.rollback()
    labels = _labels(model, chosen)
    result: dict[str, Any] = {
        "model": model,
        "records": [{"id": i, "label": labels.get(i, f"#{i}"), "matches": i in matched}
                    for i in chosen],
        "matched_ids": matched, "actions": outcome}
    if rule is not None:
        run = _log(session, rule, "dry_run", chosen, matched_ids=matched, outcome=outcome,
                   status="no_match" if not matched else "done", dry_run=True)
        session.commit()
        result["run_id"] = run.id
    return result


# ------------------------------------------------------------------ the tick


def _due_schedules(session: Any, now: datetime) -> list[AutomationRule]:
    """Claim the schedule rules due at ``now``: each moved to its next time by a
    conditional update, so two ticks never both take one."""
    claimed = []
    for rule in session.scalars(select(AutomationRule).where(
            AutomationRule.enabled.is_(True), AutomationRule.trigger_kind == "schedule",
            AutomationRule.next_run_at <= now)).all():
        result = session.execute(
            update(AutomationRule).where(AutomationRule.id == rule.id,
                                         AutomationRule.next_run_at == rule.next_run_at)
            .values(next_run_at=_next_run(rule.trigger, now)),
            execution_options={"synchronize_session": False})
        if result.rowcount == 1:
            claimed.append(rule)
    return claimed


def _date_bounds(rule: AutomationRule, now: datetime) -> tuple[Any, Any, Any]:
    """The date column, and the values it must lie after and up to: a record is due
    once ``date ∓ days`` has come, and after the rule was switched on."""
    entry = _registry().get(rule.model)
    column = getattr(entry.model, rule.trigger["field"])
    days = timedelta(days=int(rule.trigger["days"]))
    shift = days if rule.trigger.get("direction", "before") == "before" else -days
    upper, lower = now + shift, (rule.active_since or now) + shift
    from sqlalchemy import Date, DateTime

    if isinstance(column.type, Date) and not isinstance(column.type, DateTime):
        upper, lower = upper.date(), lower.date()
    return column, lower, upper


def fire_dates(session: Any, rule: AutomationRule, now: datetime) -> list[int]:
    """The records of a date rule due at ``now`` and never fired for their date
    value: marked fired (one insert from a select) and returned."""
    entry = _registry().get(rule.model)
    column, lower, upper = _date_bounds(rule, now)
    value = cast(column, String(40))
    due = (conditions.records(rule.conditions, rule.model)
           .where(column.is_not(None), column > lower, column <= upper,
                  ~exists().where(AutomationFired.rule_id == rule.id,
                                  AutomationFired.record_id == entry.model.id,
                                  AutomationFired.fired_for == value)))
    rows = select(literal(rule.id), entry.model.id, value).where(
        entry.model.id.in_(due.scalar_subquery()))
    result = session.execute(insert(AutomationFired).from_select(
        ["rule_id", "record_id", "fired_for"], rows).returning(AutomationFired.record_id))
    return sorted(result.scalars().all())


def tick(now: str | datetime | None = None) -> dict[str, int]:
    """Job ``core.automation_tick`` (every minute): queue the runs of the schedule
    rules due at ``now`` and of the date rules' newly due records."""
    from trellis.jobs import enqueue

    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    now = now or utcnow()
    session = db.session
    queued = 0
    with conditions.as_of(now):
        for rule in _due_schedules(session, now):
            enqueue(RUN_JOB, rule_id=rule.id, record_ids=None, trigger="schedule")
            queued += 1
        for rule in session.scalars(select(AutomationRule).where(
                AutomationRule.enabled.is_(True), AutomationRule.trigger_kind == "date")
                .order_by(AutomationRule.id)).all():
            ids = fire_dates(session, rule, now)
            if ids:
                enqueue(RUN_JOB, rule_id=rule.id, record_ids=ids, trigger="date")
                queued += 1
    session.commit()
    return {"queued": queued}
