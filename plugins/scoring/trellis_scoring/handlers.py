"""Incremental updates: an event about a customer's order, rating or activity
queues the rescoring of that customer (``scoring.recompute_contacts``)."""

from __future__ import annotations

import fnmatch
from typing import Any

from trellis.db import db
from trellis.events import Event


def _patterns() -> list[str]:
    from trellis.settings import get_settings

    raw = get_settings("scoring")["recompute_on_events"]
    return [p.strip() for p in raw.split(",") if p.strip()]


def contacts_of(evt: Event) -> list[int]:
    """The contacts an event concerns: the record's contact (registry
    ``contact_field``) for record events, else ``contact_id`` in its data."""
    from trellis.actions import contact_ids
    from trellis.extension import current_trellis

    found: list[int] = []
    if evt.model and evt.record_id is not None and evt.model in current_trellis().registry:
        try:
            found = contact_ids(db.session, evt.model, [int(evt.record_id)])
        except (TypeError, ValueError):
            found = []
    data_id = (evt.data or {}).get("contact_id")
    if isinstance(data_id, int) and data_id not in found:
        found.append(data_id)
    return found


def rescore_on_event(evt: Event) -> None:
    """Handler (every event, foreground): queue the rescoring when the event
    matches the ``recompute_on_events`` setting and concerns a contact."""
    if evt.name.startswith(("scoring.", "customer_score.", "score_history.", "scoring_")):
        return
    if not any(fnmatch.fnmatchcase(evt.name, p) for p in _patterns()):
        return
    ids = contacts_of(evt)
    if ids:
        from trellis.jobs import enqueue

        enqueue("scoring.recompute_contacts", contact_ids=ids)


def score_lead_on_event(evt: Event) -> None:
    """Handler (every event, foreground): a new or changed lead is rescored; an
    event named like a behaviour rule (``demo.requested``) whose data has a
    ``lead_id`` records that signal and rescores the lead."""
    from trellis.jobs import enqueue
    from trellis_scoring import leads

    if evt.model == "lead" and evt.name in ("lead.created", "lead.updated"):
        if evt.name == "lead.updated" and set(evt.changes or {}) <= {"status", "score",
                                                                      "updated_on"}:
            return  # qualifying the lead changes no input of its score
        enqueue("scoring.lead_scores", lead_ids=[int(evt.record_id)])
        return
    lead_id = (evt.data or {}).get("lead_id")
    if not isinstance(lead_id, int) or evt.name.startswith("scoring."):
        return
    if evt.name not in leads.behaviour_kinds():
        return
    if db.session.get(leads.lead_model(), lead_id) is None:
        return
    leads.record_signal(lead_id, evt.name)
    db.session.commit()
    enqueue("scoring.lead_scores", lead_ids=[lead_id])
