"""What a rule says, checked: its trigger, conditions and actions.

A rule's definition is JSON::

    {"name": "Onboard big wins", "model": "deal", "enabled": true,
     "trigger": {"kind": "event", "event": "deal.won"},
     "conditions": {"and": [{"type": "record", "field": "amount", "op": "gt",
                             "value": 10000}]},
     "actions": [{"action": "service.create_ticket",
                  "params": {"subject": "Onboard {{ record.name }}"}},
                 {"action": "core.add_tag", "params": {"tag": "customer", "on": "account"}}]}

Trigger kinds:

* ``record``: ``{"on": "created"|"updated"|"deleted"}``, optionally
  ``"field"`` (an update that changed it) and ``"to"`` / ``"from"`` (its new / old
  value, compared as text);
* ``event``: ``{"event": "deal.won"}``, any named event of any plugin; the record
  is the event's record, else ``data[record_key]`` (default ``<model>_id``);
* ``schedule``: ``{"interval": seconds}`` (at least 60) or ``{"cron": "0 8 * * 1"}``
  (UTC): every record matching the conditions;
* ``date``: ``{"field": "expected_close", "days": 3, "direction": "before"}``:
  each record once per value of the date field, N days before or after it.

:func:`check` answers ``{path: [messages]}`` (``trigger.field``,
``conditions.and.0.value``, ``actions.1.params.tag``), empty when valid.
"""

from __future__ import annotations

import re
from typing import Any

from trellis import actions as actions_api
from trellis import conditions

TRIGGER_KINDS = ("record", "event", "schedule", "date")
RECORD_ON = ("created", "updated", "deleted")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
#: Most actions in one rule.
MAX_ACTIONS = 20
#: Shortest schedule interval (seconds): the automation tick runs every minute.
MIN_INTERVAL = 60


def _models() -> Any:
    from trellis.extension import current_trellis

    return current_trellis().registry


def _record_columns(model: str, kinds: tuple[str, ...] | None = None) -> list[str]:
    """The model's own columns (not related fields), optionally of some kinds."""
    return [name for name, (_, kind, _l) in conditions.record_fields(model).items()
            if "." not in name and (kinds is None or kind in kinds)]


def check_trigger(model: str, trigger: Any) -> dict[str, list[str]]:
    """``{key: [messages]}`` for a trigger of a rule on ``model``."""
    if not isinstance(trigger, dict):
        return {"trigger": ["Must be an object with a kind."]}
    kind = trigger.get("kind")
    if kind not in TRIGGER_KINDS:
        return {"trigger.kind": [f"Must be one of: {', '.join(TRIGGER_KINDS)}."]}
    errors: dict[str, list[str]] = {}
    if kind == "record":
        if trigger.get("on") not in RECORD_ON:
            errors["trigger.on"] = [f"Must be one of: {', '.join(RECORD_ON)}."]
        field = trigger.get("field")
        if field is not None:
            if trigger.get("on") != "updated":
                errors["trigger.field"] = ["Only an update changes a field."]
            elif field not in _record_columns(model):
                errors["trigger.field"] = [f"{model} has no field {field!r}."]
        for key in ("to", "from"):
            if key in trigger and field is None:
                errors[f"trigger.{key}"] = ["Name the field that changes."]
            elif key in trigger and not isinstance(trigger[key], (str, int, float, bool,
                                                                   type(None))):
                errors[f"trigger.{key}"] = ["Must be a single value."]
    elif kind == "event":
        name = trigger.get("event")
        if not isinstance(name, str) or not EVENT_NAME.match(name) or len(name) > 100:
            errors["trigger.event"] = ["Must be an event name such as deal.won."]
        key = trigger.get("record_key")
        if key is not None and (not isinstance(key, str) or not key.isidentifier()):
            errors["trigger.record_key"] = ["Must be the name of a key of the event's data."]
    elif kind == "schedule":
        interval, cron = trigger.get("interval"), trigger.get("cron")
        if (interval is None) == (cron is None):
            errors["trigger"] = ["Give exactly one of interval (seconds) and cron."]
        elif interval is not None and (isinstance(interval, bool) or not isinstance(
                interval, int) or not MIN_INTERVAL <= interval <= 366 * 86400):
            errors["trigger.interval"] = [f"Must be whole seconds from {MIN_INTERVAL}."]
        elif cron is not None:
            from croniter import croniter

            if not isinstance(cron, str) or not croniter.is_valid(cron):
                errors["trigger.cron"] = ["Must be a cron expression such as 0 8 * * 1."]
    else:
        if trigger.get("field") not in _record_columns(model, ("date",)):
            errors["trigger.field"] = [f"Must be a date field of {model}: "
                                       f"{', '.join(_record_columns(model, ('date',)))}."]
        days = trigger.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
            errors["trigger.days"] = ["Must be a whole number of days from 0 to 3650."]
        if trigger.get("direction", "before") not in ("before", "after"):
            errors["trigger.direction"] = ["Must be before or after."]
    return errors


def trigger_event(model: str, trigger: dict[str, Any]) -> str | None:
    """The event name a record or event trigger listens to."""
    if trigger["kind"] == "record":
        return f"{model}.{trigger['on']}"
    if trigger["kind"] == "event":
        return trigger["event"]
    return None


def check(data: Any) -> dict[str, list[str]]:
    """Everything wrong with a rule definition, by path (empty when valid)."""
    if not isinstance(data, dict):
        return {"(root)": ["Must be an object."]}
    errors: dict[str, list[str]] = {}
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors["name"] = ["Must be a name of 1 to 200 characters."]
    if data.get("description") is not None and not isinstance(data["description"], str):
        errors["description"] = ["Must be a text."]
    if "enabled" in data and not isinstance(data["enabled"], bool):
        errors["enabled"] = ["Must be true or false."]
    model = data.get("model")
    if not isinstance(model, str) or model not in _models():
        errors["model"] = [f"Must be a registered model: {', '.join(e.name for e in _models())}."]
        return errors
    errors.update(check_trigger(model, data.get("trigger")))
    tree = data.get("conditions")
    if tree is not None:
        if (data.get("trigger") or {}).get("on") == "deleted":
            errors["conditions"] = ["A deleted record cannot be tested: leave conditions out."]
        else:
            with conditions.for_model(model):
                for path, messages in conditions.validate(tree).items():
                    errors[f"conditions.{path}" if path != "(root)" else "conditions"] = messages
    steps = data.get("actions")
    if not isinstance(steps, list) or not steps:
        errors["actions"] = ["Must be a non-empty list of actions."]
    elif len(steps) > MAX_ACTIONS:
        errors["actions"] = [f"At most {MAX_ACTIONS} actions."]
    else:
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or not isinstance(step.get("action"), str):
                errors[f"actions.{i}"] = ['Must be {"action": name, "params": {...}}.']
                continue
            try:
                actions_api.validate_params(step["action"], model, step.get("params") or {})
            except actions_api.ActionError as exc:
                for key, messages in exc.messages.items():
                    where = "action" if key == "action" else f"params.{key}"
                    errors[f"actions.{i}.{where}"] = list(messages)
    return errors


def normalised(data: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a valid definition (what a version snapshots)."""
    return {"name": data["name"].strip(), "description": data.get("description"),
            "model": data["model"], "trigger": dict(data["trigger"]),
            "conditions": data.get("conditions"),
            "actions": [{"action": s["action"], "params": dict(s.get("params") or {})}
                        for s in data["actions"]],
            "enabled": bool(data.get("enabled", False))}
