"""Lead scoring: profile fit plus behaviour points that decay over time.

``score = clip(profile + Σ behaviour points · 0.5^(age in days / half-life), 0, 100)``

* **Profile** rules match a field of the lead (``industry``, ``title``,
  ``country``, ``company``, ``source``) against a value with ``*`` wildcards,
  ignoring case, in SQL (one ``UNION ALL`` of a select per rule).
* **Behaviour** rules give points per signal of a kind (``email.opened``,
  ``web.page_view``, ``form.submitted``, ``demo.requested``...).  Signals come
  from ``POST /api/v1/scoring/lead_signal`` and from any event of that name
  whose data carries a ``lead_id``.  Decay is vectorised with numpy.
* When a lead's score first reaches ``lead_qualify_from`` while the lead is
  ``new`` or ``contacted``, the event ``scoring.lead_qualified`` (``lead_id``,
  ``score``) fires once; the sales plugin qualifies the lead on it.

Leads are the sales plugin's; they are read through the model registry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import and_, func, insert, literal, select, union_all, update

from trellis.db import db, utcnow
from trellis.settings import get_settings
from trellis.sqlfuncs import days_between
from trellis_scoring.models import LeadRule, LeadScore, LeadSignal

OPEN_STATUSES = ("new", "contacted")


def lead_model() -> type:
    from trellis.extension import current_trellis

    return current_trellis().registry.get("lead").model


def decayed(points: np.ndarray, age_days: np.ndarray, half_life_days: float) -> np.ndarray:
    """``points · 0.5^(age / half-life)`` (future signals count in full)."""
    age = np.maximum(np.asarray(age_days, dtype=float), 0.0)
    return np.asarray(points, dtype=float) * np.power(0.5, age / float(half_life_days))


def _profile_points(session: Any, lead: type, ids: list[int] | None) -> dict[int, float]:
    parts = []
    for rule in session.scalars(select(LeadRule).where(LeadRule.kind == "profile")):
        column = getattr(lead, rule.field, None)
        if column is None or not rule.value:
            continue
        pattern = rule.value.lower().replace("%", r"\%").replace("_", r"\_").replace("*", "%")
        stmt = select(lead.id.label("lead_id"), literal(float(rule.points)).label("points")) \
            .where(func.lower(column).like(pattern, escape="\\"))
        if ids is not None:
            stmt = stmt.where(lead.id.in_(ids))
        parts.append(stmt)
    if not parts:
        return {}
    u = union_all(*parts).subquery()
    return {lid: float(p) for lid, p in session.execute(
        select(u.c.lead_id, func.sum(u.c.points)).group_by(u.c.lead_id))}


def _behaviour(session: Any, ids: list[int] | None, now: Any) -> tuple[np.ndarray, ...]:
    stmt = (select(LeadSignal.lead_id, LeadRule.points, days_between(LeadSignal.occurred_at, now))
            .join(LeadRule, and_(LeadRule.kind == "behaviour", LeadRule.field == LeadSignal.kind)))
    if ids is not None:
        stmt = stmt.where(LeadSignal.lead_id.in_(ids))
    rows = session.execute(stmt).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    arr = np.array(rows, dtype=float)
    return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2]


def score_leads(lead_ids: list[int] | None = None) -> dict[str, int]:
    """Job ``scoring.lead_scores``: (re)score all leads or ``lead_ids``, and fire
    ``scoring.lead_qualified`` for those crossing the threshold."""
    from trellis.events import emit

    session = db.session
    lead = lead_model()
    settings = get_settings("scoring")
    now = utcnow()
    stmt = select(lead.id).order_by(lead.id)
    if lead_ids is not None:
        stmt = stmt.where(lead.id.in_(lead_ids))
    ids = np.array(session.scalars(stmt).all(), dtype=np.int64)
    if not len(ids):
        return {"leads": 0, "qualified": 0}
    wanted = None if lead_ids is None else ids.tolist()
    profile_map = _profile_points(session, lead, wanted)
    profile = np.array([profile_map.get(int(i), 0.0) for i in ids])
    sig_ids, points, ages = _behaviour(session, wanted, now)
    behaviour = np.zeros(len(ids))
    if len(sig_ids):
        pos = np.searchsorted(ids, sig_ids)
        ok = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == sig_ids)
        np.add.at(behaviour, pos[ok], decayed(points[ok], ages[ok],
                                              settings["lead_half_life_days"]))
    score = np.round(np.clip(profile + behaviour, 0, 100), 2)
    existing = set(session.scalars(select(LeadScore.lead_id).where(
        LeadScore.lead_id.in_(ids.tolist()))) if len(ids) <= 10000 else
        session.scalars(select(LeadScore.lead_id)))
    rows = [{"lead_id": int(i), "profile_points": float(p), "behaviour_points": round(float(b), 4),
             "score": float(s), "computed_at": now}
            for i, p, b, s in zip(ids, profile, behaviour, score)]
    old = [r for r in rows if r["lead_id"] in existing]
    new = [r for r in rows if r["lead_id"] not in existing]
    if old:
        session.execute(update(LeadScore), old)
    if new:
        session.execute(insert(LeadScore), new)
    threshold = float(settings["lead_qualify_from"])
    crossing = session.execute(
        select(LeadScore.lead_id, LeadScore.score)
        .join(lead, lead.id == LeadScore.lead_id)
        .where(LeadScore.score >= threshold, LeadScore.qualified_at.is_(None),
               lead.status.in_(OPEN_STATUSES),
               *([LeadScore.lead_id.in_(ids.tolist())] if lead_ids is not None else []))).all()
    if crossing:
        session.execute(update(LeadScore).where(
            LeadScore.lead_id.in_([c[0] for c in crossing])).values(qualified_at=now))
        for lid, s in crossing:
            emit("scoring.lead_qualified", {"lead_id": lid, "score": s}, plugin="scoring")
    session.commit()
    return {"leads": int(len(ids)), "qualified": len(crossing)}


def record_signal(lead_id: int, kind: str, occurred_at: Any = None) -> LeadSignal:
    signal = LeadSignal(lead_id=lead_id, kind=kind, occurred_at=occurred_at or utcnow())
    db.session.add(signal)
    return signal


def behaviour_kinds() -> set[str]:
    return set(db.session.scalars(select(LeadRule.field).where(LeadRule.kind == "behaviour")))
