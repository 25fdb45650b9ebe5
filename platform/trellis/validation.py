"""Model-level rules run at flush time, whatever path the write took.

A :class:`~trellis.specs.ModelSpec` may name ``before_save(session, obj,
action)`` — side effects in the same transaction (history rows, derived
fields) — and ``validate(obj)`` returning ``{field: [messages]}``.  Both run
for every insert and update of the model made through ``db.session`` (web
form, REST API, job, import), only while the owning plugin is enabled.  Field
errors abort the flush with :class:`RecordInvalid`; the REST API answers 400
with them, a web form shows them, and nothing is written.  ``before_save`` is
also called with ``"deleted"`` for deletions.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from marshmallow import ValidationError
from sqlalchemy import event as sa_event, inspect

from trellis import rules

from trellis.session import TrellisSession


class RecordInvalid(ValidationError):
    """Field errors found while saving; ``messages`` is ``{field: [message]}``."""

    def __str__(self) -> str:
        messages = self.messages if isinstance(self.messages, dict) else {"_": self.messages}
        return "; ".join(f"{field}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                         for field, msgs in messages.items())


@sa_event.listens_for(TrellisSession, "before_flush")
def _before_flush(session: Any, flush_context: Any, instances: Any) -> None:
    if not has_app_context():
        return
    ext = current_app.extensions.get("trellis")
    if ext is None:
        return
    errors: dict[str, list[str]] = {}
    for obj in list(session.deleted):
        entry = ext.registry.for_class(type(obj))
        if entry is not None and entry.spec.before_save is not None \
                and ext.is_enabled(entry.plugin):
            entry.spec.before_save(session, obj, "deleted")
    done: set[int] = set()
    while True:  # a before_save may add records (an order for a won deal): run theirs too
        todo = [("created", o) for o in session.new if id(o) not in done] + [
            ("updated", o) for o in session.dirty if id(o) not in done]
        if not todo:
            break
        for action, obj in todo:
            done.add(id(obj))
            entry = ext.registry.for_class(type(obj))
            if entry is None or not ext.is_enabled(entry.plugin):
                continue
            spec = entry.spec
            if action == "updated" and not session.is_modified(obj, include_collections=False):
                continue
            if spec.owner_field and (action == "created" or inspect(obj).attrs[
                    spec.owner_field].history.has_changes()):
                problem = rules.check_owner(getattr(obj, spec.owner_field))
                if problem:
                    errors.setdefault(spec.owner_field, []).append(problem)
            if spec.before_save is not None:
                spec.before_save(session, obj, action)
            if spec.validate is not None:
                for field, messages in (spec.validate(obj) or {}).items():
                    errors.setdefault(field, []).extend(messages)
    if errors:
        raise RecordInvalid(errors)
