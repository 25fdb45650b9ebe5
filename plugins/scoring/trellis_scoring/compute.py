"""Recomputing scores: all customers at once (set-based), or a few incrementally.

A full recompute of a model (:func:`recompute_model`):

1. reads every contact id and, per term, its feature with the feature's own
   set-based query (``trellis.features``: one ``GROUP BY`` over all contacts);
2. normalises and weights them with numpy (:mod:`trellis_scoring.engine`);
3. loads the results into a temporary staging table (``COPY`` on PostgreSQL,
   one ``executemany`` on SQLite) and applies them with three statements: a
   history row for every customer whose value or tier changed, an ``UPDATE …
   FROM`` of the existing scores and an ``INSERT … SELECT`` of the new ones.
   The explanation JSON is built by the database (``json_build_array``).

Its :class:`~trellis_scoring.models.ScoringRun` keeps the normalisation used
(bounds, weights, the distribution's quantiles), so an incremental update
(:func:`recompute_contacts`, after an order, a rating or an activity) scores a
customer against the same distribution, and explanations show what was used.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterable

import numpy as np
from sqlalchemy import select, text

from trellis import features
from trellis.db import db, utcnow
from trellis.models import Contact
from trellis.settings import get_settings
from trellis_scoring import engine
from trellis_scoring.models import (CustomerScore, ScoreHistory, ScoringCursor, ScoringModel,
                                    ScoringRun)

PLUGIN = "scoring"


def _term(row: Any) -> engine.Term:
    return engine.Term(feature=row.feature, weight=float(row.weight or 0.0), method=row.method,
                       direction=row.direction, floor=row.floor, cap=row.cap,
                       cap_percentile=row.cap_percentile,
                       missing_score=float(row.missing_score or 0.0),
                       label=row.label or row.feature)


def _available(name: str) -> bool:
    spec = features.get(name)
    return spec is not None and spec.kind == "number"


def _read_feature(session: Any, name: str, ids: np.ndarray) -> np.ndarray:
    """The feature's value for each of the sorted contact ``ids`` (``NaN``: none)."""
    out = np.full(len(ids), np.nan)
    sub = features.query(name).subquery()
    rows = session.execute(select(sub.c.contact_id, sub.c.value)).all()
    if not rows or not len(ids):
        return out
    # column-wise: numpy on a list of Row objects (np.array(rows)) is ~30x slower
    id_col, value_col = zip(*rows)
    cid = np.fromiter(id_col, dtype=np.int64, count=len(rows))
    val = np.fromiter((np.nan if v is None else float(v) for v in value_col), dtype=float,
                      count=len(rows))
    pos = np.searchsorted(ids, cid)
    pos_ok = pos < len(ids)
    ok = np.zeros(len(cid), dtype=bool)
    ok[pos_ok] = ids[pos[pos_ok]] == cid[pos_ok]
    out[pos[ok]] = val[ok]
    return out


def tier_bounds() -> tuple[float, float]:
    s = get_settings(PLUGIN)
    return float(s["high_tier_from"]), float(s["medium_tier_from"])


def score_matrix(terms: list[engine.Term], matrix: np.ndarray,
                 available: list[bool]) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Scores (n × k), values (n) and the run's term snapshots for a feature
    ``matrix`` (n × k, ``NaN``: no value).  Unavailable terms score ``NaN`` and
    weigh 0; the others' weights are normalised to sum 1."""
    n, k = matrix.shape
    scores = np.full((n, k), np.nan)
    raw_weights = np.array([t.weight if ok else 0.0 for t, ok in zip(terms, available)])
    snapshots = []
    weights = (raw_weights / raw_weights.sum()) if raw_weights.sum() > 0 else raw_weights
    for j, term in enumerate(terms):
        snap: dict[str, Any] = {"feature": term.feature, "label": term.label,
                                "weight": float(weights[j]), "given_weight": term.weight,
                                "available": available[j]}
        if available[j]:
            scores[:, j], norm = engine.normalise(matrix[:, j], term)
            snap.update(norm.to_dict())
        else:
            snap.update({"method": term.method, "direction": term.direction})
        snapshots.append(snap)
    if weights.sum() > 0:
        values = np.round(np.nan_to_num(scores) @ weights, 2)
    else:
        values = np.zeros(n)
    return scores, values, snapshots


# ------------------------------------------------------------------ full recompute


def _json_pairs(dialect: str, k: int) -> str:
    if dialect == "postgresql":
        pair = "json_build_array(NULLIF(s.v{j}, 'NaN'::float8), NULLIF(s.s{j}, 'NaN'::float8))"
        return "json_build_array(" + ", ".join(pair.format(j=j) for j in range(k)) + ")"
    pair = "json_array(s.v{j}, s.s{j})"
    return "json_array(" + ", ".join(pair.format(j=j) for j in range(k)) + ")"


def _stage(session: Any, name: str, ids: np.ndarray, values: np.ndarray, tier: np.ndarray,
           matrix: np.ndarray, scores: np.ndarray) -> None:
    """Load the results into the temporary table ``name``."""
    conn = session.connection()
    dialect = conn.dialect.name
    k = matrix.shape[1]
    cols = ["contact_id", "value", "tier"] + [f"{p}{j}" for j in range(k) for p in ("v", "s")]
    types = ["INTEGER", "NUMERIC(6,2)", "VARCHAR(8)"] + ["DOUBLE PRECISION"] * (2 * k)
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} ("
                      + ", ".join(f"{c} {t}" for c, t in zip(cols, types)) + ")"))
    data = [ids.tolist(), values.tolist(), tier.tolist()]
    for j in range(k):
        data.append(np.round(matrix[:, j], 4).tolist())
        data.append(np.round(scores[:, j], 2).tolist())
    rows = zip(*data)
    if dialect == "postgresql":
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur, cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as cp:
            for row in rows:  # psycopg's C row writer; NaN travels as 'NaN'
                cp.write_row(row)
    else:
        marks = ", ".join("?" for _ in cols)
        raw = conn.connection.dbapi_connection
        raw.executemany(f"INSERT INTO {name} VALUES ({marks})",
                        [tuple(None if isinstance(v, float) and v != v else v for v in row)
                         for row in rows])


def _apply(session: Any, stage: str, model_id: int, run_id: int, k: int) -> None:
    conn = session.connection()
    dialect = conn.dialect.name
    params = {"m": model_id, "r": run_id, "now": utcnow()}
    conn.execute(text(
        f"INSERT INTO scoring_history (model_id, contact_id, value, tier, computed_at, run_id) "
        f"SELECT :m, s.contact_id, s.value, s.tier, :now, :r FROM {stage} s "
        f"LEFT JOIN scoring_customer_score c ON c.model_id = :m AND c.contact_id = s.contact_id "
        f"WHERE c.id IS NULL OR c.value <> s.value OR c.tier <> s.tier"), params)
    explanation = _json_pairs(dialect, k)
    # every row of the model is replaced: cheaper than an UPDATE … FROM of them all
    conn.execute(text("DELETE FROM scoring_customer_score WHERE model_id = :m"), params)
    conn.execute(text(
        f"INSERT INTO scoring_customer_score (model_id, contact_id, value, tier, run_id, "
        f"computed_at, explanation) SELECT :m, s.contact_id, s.value, s.tier, :r, :now, "
        f"{explanation} FROM {stage} s"), params)
    conn.execute(text(f"DROP TABLE {stage}"))


def recompute_model(session: Any, model: ScoringModel) -> ScoringRun:
    """Recompute every contact's score in ``model`` (set-based); returns the run."""
    started = time.perf_counter()
    run = ScoringRun(model_id=model.id, kind="full", started_at=utcnow())
    session.add(run)
    session.flush()
    terms = [_term(t) for t in model.terms]
    ids = np.array(session.scalars(select(Contact.id).order_by(Contact.id)).all(),
                   dtype=np.int64)
    available = [_available(t.feature) for t in terms]
    cache: dict[str, np.ndarray] = {}
    matrix = np.full((len(ids), len(terms)), np.nan)
    for j, term in enumerate(terms):
        if available[j]:
            if term.feature not in cache:
                cache[term.feature] = _read_feature(session, term.feature, ids)
            matrix[:, j] = cache[term.feature]
    scores, values, snapshots = score_matrix(terms, matrix, available)
    high, medium = tier_bounds()
    tier = engine.tiers(values, high, medium)
    if len(ids) and terms:
        stage = f"scoring_stage_{uuid.uuid4().hex[:12]}"
        _stage(session, stage, ids, values, tier, matrix, scores)
        _apply(session, stage, model.id, run.id, len(terms))
    run.terms = snapshots
    run.customers = int(len(ids))
    run.finished_at = utcnow()
    run.seconds = round(time.perf_counter() - started, 3)
    session.flush()
    return run


def active_models(session: Any, keys: Iterable[str] | None = None) -> list[ScoringModel]:
    stmt = select(ScoringModel).where(ScoringModel.active.is_(True)).order_by(ScoringModel.id)
    if keys:
        stmt = stmt.where(ScoringModel.key.in_(list(keys)))
    return list(session.scalars(stmt))


def recompute_all(models: list[str] | None = None) -> dict[str, Any]:
    """Job ``scoring.recompute``: recompute every active model (or those named)."""
    session = db.session
    out: dict[str, Any] = {}
    for model in active_models(session, models):
        run = recompute_model(session, model)
        out[model.key] = {"run_id": run.id, "customers": run.customers, "seconds": run.seconds}
    from trellis_scoring import extras

    out.update(extras.recompute_extras(session))
    session.commit()
    return out


# ------------------------------------------------------------------ incremental


def last_full_run(session: Any, model_id: int) -> ScoringRun | None:
    return session.scalars(select(ScoringRun).where(
        ScoringRun.model_id == model_id, ScoringRun.kind == "full")
        .order_by(ScoringRun.started_at.desc(), ScoringRun.id.desc()).limit(1)).first()


def _norm(snap: dict[str, Any]) -> engine.Normalisation:
    return engine.Normalisation(snap.get("method", "percentile"), snap.get("direction", "higher"),
                                float(snap.get("missing_score") or 0.0), snap.get("floor"),
                                snap.get("cap"), int(snap.get("n") or 0),
                                list(snap.get("quantiles") or []))


def score_contacts(session: Any, model: ScoringModel, contact_ids: list[int]) -> int:
    """Rescore ``contact_ids`` in ``model`` against its last full run (nothing
    before the first full recompute).  Returns how many were scored."""
    run = last_full_run(session, model.id)
    if run is None:
        return 0
    ids = sorted(set(session.scalars(select(Contact.id).where(Contact.id.in_(contact_ids)))))
    if not ids:
        return 0
    snaps = run.terms or []
    values_by_term = [features.values(session, s["feature"], ids)
                      if s.get("available") and _available(s["feature"]) else {}
                      for s in snaps]
    high, medium = tier_bounds()
    now = utcnow()
    existing = {s.contact_id: s for s in session.scalars(select(CustomerScore).where(
        CustomerScore.model_id == model.id, CustomerScore.contact_id.in_(ids)))}
    for cid in ids:
        pairs, total = [], 0.0
        for snap, vals in zip(snaps, values_by_term):
            if not snap.get("available"):
                pairs.append([None, None])
                continue
            raw = vals.get(cid)
            value = None if raw is None else float(raw)
            score = round(engine.normalise_one(value, _norm(snap)), 2)
            total += float(snap["weight"]) * score
            pairs.append([None if value is None else round(value, 4), score])
        value = round(total, 2)
        tier = engine.tier_of(value, high, medium)
        row = existing.get(cid)
        if row is None:
            row = CustomerScore(model_id=model.id, contact_id=cid)
            session.add(row)
        changed = row.value is None or float(row.value) != value or row.tier != tier
        row.value, row.tier, row.run_id, row.computed_at, row.explanation = (
            value, tier, run.id, now, pairs)
        if changed:
            session.add(ScoreHistory(model_id=model.id, contact_id=cid, value=value, tier=tier,
                                     computed_at=now, run_id=run.id))
    session.flush()
    return len(ids)


def recompute_contacts(contact_ids: list[int]) -> dict[str, int]:
    """Job ``scoring.recompute_contacts``: rescore these customers in every active model."""
    session = db.session
    out = {m.key: score_contacts(session, m, contact_ids) for m in active_models(session)}
    from trellis_scoring import extras

    out.update(extras.recompute_extras(session, contact_ids))
    session.commit()
    return out


#: Above this many customers with new activities a sweep recomputes everything.
SWEEP_FULL_ABOVE = 5000


def sweep_activities() -> dict[str, Any]:
    """Job ``scoring.sweep_activities`` (every 15 s): rescore the customers who
    have timeline activities newer than the last sweep (activities fire no
    record events).  The first sweep only remembers where the timeline is."""
    from sqlalchemy import func

    from trellis.models import Activity

    session = db.session
    cursor = session.get(ScoringCursor, "activity")
    top = session.scalar(select(func.max(Activity.id))) or 0
    if cursor is None:
        session.add(ScoringCursor(name="activity", value=top))
        session.commit()
        return {"contacts": 0}
    if top <= cursor.value:
        return {"contacts": 0}
    ids = list(session.scalars(select(Activity.contact_id).distinct().where(
        Activity.id > cursor.value, Activity.id <= top, Activity.contact_id.is_not(None))))
    cursor.value = top
    if len(ids) > SWEEP_FULL_ABOVE:
        session.commit()
        return {"contacts": len(ids), **recompute_all()}
    session.commit()
    return {"contacts": len(ids), **recompute_contacts(ids)}
