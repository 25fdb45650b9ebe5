"""Recomputing scores: all customers at once (set-based), or a few incrementally.

A full recompute of a model (:func:`recompute_model`) never moves a customer's
row through Python on PostgreSQL:

1. **Features** — one ``INSERT … SELECT`` fills a temporary table with every
   contact and, per feature of the model, its value (each feature's own
   set-based query, ``trellis.features.query``, ``LEFT JOIN`` on the
   contacts).
2. **Normalisation** — the distribution of each feature (count, minimum, the
   percentile cap and the run's quantiles) by one aggregate query
   (``percentile_cont(ARRAY[…])``), kept in the run's snapshot.
3. **Scores** — one ``CREATE TEMPORARY TABLE … AS SELECT`` computes every
   term's score (``rank()`` windows for percentile ranks, capped min-max), the
   weighted value, its tier and the rounded explanation pairs.  SQLite (the
   embedded default, small data) reads the feature table into numpy and
   computes the same (:mod:`trellis_scoring.engine`: the same floating-point
   operations in the same order, so both give identical values) into the same
   staging table.
4. **Apply** — a history row for each customer whose value or tier changed;
   an ``UPDATE`` of only the rows whose value, tier or explanation changed
   (all of them when the model's terms changed), an ``INSERT`` of the new
   customers and a ``DELETE`` of the gone ones.  A row left as it was keeps the
   run (and time) it was last computed in: that run's terms explain it.

Its :class:`~trellis_scoring.models.ScoringRun` keeps the normalisation used
(bounds, weights, the distribution's quantiles), so an incremental update
(:func:`recompute_contacts`, after an order, a rating or an activity) scores a
customer against the same distribution, and explanations show what was used.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from sqlalchemy import Float, Integer, column, func, insert, select, table, text

from trellis import features
from trellis.db import db, utcnow
from trellis.models import Contact
from trellis.settings import get_settings
from trellis_scoring import engine
from trellis_scoring.models import (CustomerScore, ScoreHistory, ScoringCursor, ScoringModel,
                                    ScoringRun)

PLUGIN = "scoring"
#: Memory for the sorts and hashes of a full recompute (PostgreSQL, this transaction).
WORK_MEM = "256MB"


def _term(row: Any) -> engine.Term:
    return engine.Term(feature=row.feature, weight=float(row.weight or 0.0), method=row.method,
                       direction=row.direction, floor=row.floor, cap=row.cap,
                       cap_percentile=row.cap_percentile,
                       missing_score=float(row.missing_score or 0.0),
                       label=row.label or row.feature)


def _available(name: str) -> bool:
    spec = features.get(name)
    return spec is not None and spec.kind == "number"


def tier_bounds() -> tuple[float, float]:
    s = get_settings(PLUGIN)
    return float(s["high_tier_from"]), float(s["medium_tier_from"])


def model_weights(terms: list[engine.Term], available: list[bool]) -> np.ndarray:
    """The terms' weights divided by their sum; unavailable terms weigh 0."""
    raw = np.array([t.weight if ok else 0.0 for t, ok in zip(terms, available)], dtype=float)
    return raw / raw.sum() if raw.sum() > 0 else raw


def score_matrix(terms: list[engine.Term], matrix: np.ndarray,
                 available: list[bool]) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Scores (n × k), values (n) and the run's term snapshots for a feature
    ``matrix`` (n × k, ``NaN``: no value).  Unavailable terms score ``NaN`` and
    weigh 0; the others' weights are normalised to sum 1."""
    n, k = matrix.shape
    scores = np.full((n, k), np.nan)
    weights = model_weights(terms, available)
    snapshots = []
    for j, term in enumerate(terms):
        snap = _snapshot(term, float(weights[j]), available[j])
        if available[j]:
            scores[:, j], norm = engine.normalise(matrix[:, j], term)
            snap.update(norm.to_dict())
        snapshots.append(snap)
    if weights.sum() > 0:
        values = np.round(engine.weighted_sum(weights, np.nan_to_num(scores)), 2)
    else:
        values = np.zeros(n)
    return scores, values, snapshots


def _snapshot(term: engine.Term, weight: float, available: bool) -> dict[str, Any]:
    snap: dict[str, Any] = {"feature": term.feature, "label": term.label, "weight": weight,
                            "given_weight": term.weight, "available": available}
    if not available:
        snap.update({"method": term.method, "direction": term.direction})
    return snap


# ------------------------------------------------------------------ full recompute


@dataclass
class _Plan:
    """A model's terms for one run: which feature column (``f0``, ``f1``…) each
    available term reads, and the weights (normalised)."""

    terms: list[engine.Term]
    available: list[bool]
    weights: np.ndarray
    features: list[str]  # distinct available features, column fᵢ is features[i]

    def column(self, j: int) -> str | None:
        if not self.available[j]:
            return None
        return f"f{self.features.index(self.terms[j].feature)}"


def _plan(model: ScoringModel) -> _Plan:
    terms = [_term(t) for t in model.terms]
    available = [_available(t.feature) for t in terms]
    names = list(dict.fromkeys(t.feature for t, ok in zip(terms, available) if ok))
    return _Plan(terms, available, model_weights(terms, available), names)


def _temp_name(kind: str) -> str:
    return f"scoring_{kind}_{uuid.uuid4().hex[:12]}"


def load_features(session: Any, name: str, names: list[str]) -> int:
    """Create the temporary table ``name`` (``contact_id``, ``f0``, ``f1``…) holding
    every contact and its value of each feature in ``names`` (``NULL``: none),
    with one ``INSERT … SELECT``; returns the number of contacts."""
    conn = session.connection()
    cols = ", ".join(f"f{i} DOUBLE PRECISION" for i in range(len(names)))
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} (contact_id INTEGER"
                      + (f", {cols}" if cols else "") + ")"))
    contacts = Contact.__table__
    source: Any = contacts
    values = []
    for i, feature in enumerate(names):
        sub = features.query(feature).subquery(f"q{i}")
        source = source.outerjoin(sub, sub.c.contact_id == contacts.c.id)
        values.append(sub.c.value.cast(Float(53)).label(f"f{i}"))
    target = table(name, column("contact_id", Integer),
                   *[column(f"f{i}", Float(53)) for i in range(len(names))])
    conn.execute(insert(target).from_select(
        ["contact_id"] + [f"f{i}" for i in range(len(names))],
        select(contacts.c.id, *values).select_from(source)))
    return int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar())


def _stage_columns(k: int) -> list[tuple[str, str]]:
    return ([("contact_id", "INTEGER"), ("value", "NUMERIC(6,2)"), ("tier", "VARCHAR(8)")]
            + [(f"{p}{j}", "DOUBLE PRECISION") for j in range(k) for p in ("v", "s")])


# ---- on PostgreSQL: in SQL


def _f8(x: float) -> str:
    """A double precision literal that reads back as exactly ``x``."""
    return f"CAST('{float(x)!r}' AS DOUBLE PRECISION)"


def _sorted_stats(plan: _Plan, counts: dict[str, int]) -> dict[str, list[float]]:
    """Per feature column, the fractions whose ``percentile_cont`` the run needs:
    the quantiles (percentile terms over more than QUANTILES values) and the caps."""
    wanted: dict[str, list[float]] = {}
    for j, term in enumerate(plan.terms):
        col = plan.column(j)
        if col is None or not counts[col]:
            continue
        fracs = wanted.setdefault(col, [])
        if term.method == "percentile" and counts[col] > engine.QUANTILES:
            fracs.extend(engine.quantile_fractions())
        elif term.method == "minmax" and term.cap is None:
            fracs.append(engine.cap_fraction(term))
    return wanted


def feature_distributions(session: Any, feat: str, plan: _Plan) -> dict[str, dict[str, Any]]:
    """Per feature column of ``feat``: ``n`` (values), ``min``, ``pct`` (``{fraction:
    percentile_cont}``) and ``all`` (every value, sorted, when a percentile
    term has at most QUANTILES of them)."""
    conn = session.connection()
    cols = [f"f{i}" for i in range(len(plan.features))]
    if not cols:
        return {}
    row = conn.execute(text("SELECT " + ", ".join(f"count({c}), min({c})" for c in cols)
                            + f" FROM {feat}")).one()
    out = {c: {"n": int(row[2 * i]), "min": row[2 * i + 1], "pct": {}, "all": None}
           for i, c in enumerate(cols)}
    counts = {c: out[c]["n"] for c in cols}
    wanted = _sorted_stats(plan, counts)
    small = sorted({plan.column(j) for j, t in enumerate(plan.terms)
                    if plan.column(j) and t.method == "percentile"
                    and 0 < counts[plan.column(j)] <= engine.QUANTILES})
    parts, keys, params = [], [], {}
    for c, fracs in sorted(wanted.items()):
        if fracs:
            fracs = sorted(set(fracs))
            params[f"p_{c}"] = fracs
            parts.append(f"percentile_cont(CAST(:p_{c} AS DOUBLE PRECISION[])) "
                         f"WITHIN GROUP (ORDER BY {c})")
            keys.append(("pct", c, fracs))
    for c in small:
        parts.append(f"array_agg({c} ORDER BY {c}) FILTER (WHERE {c} IS NOT NULL)")
        keys.append(("all", c, None))
    if parts:
        got = conn.execute(text("SELECT " + ", ".join(parts) + f" FROM {feat}"), params).one()
        for (kind, c, fracs), value in zip(keys, got):
            if kind == "pct":
                out[c]["pct"] = dict(zip(fracs, value))
            else:
                out[c]["all"] = list(value)
    return out


def _norm_sql(term: engine.Term, col: str, dist: dict[str, Any]
              ) -> tuple[str, engine.Normalisation]:
    """The SQL score (0–100, before ``missing_score``) of one available term
    over ``col``, and its normalisation (as :func:`engine.normalise`)."""
    n = dist["n"]
    norm = engine.Normalisation(term.method, term.direction, float(term.missing_score), n=n)
    if term.method == "percentile":
        if n <= engine.QUANTILES:
            norm.quantiles = [float(v) for v in (dist["all"] or [])]
        else:
            fr = engine.quantile_fractions()
            norm.quantiles = [float(dist["pct"][f]) for f in fr]
        raw = (f"CAST(100 AS DOUBLE PRECISION) * (rank() OVER (ORDER BY {col}) - 1) / {n - 1}"
               if n > 1 else _f8(0.0))
    elif term.method == "minmax":
        floor = term.floor if term.floor is not None else (
            float(dist["min"]) if n else 0.0)
        if term.cap is not None:
            cap = term.cap
        elif n:
            cap = float(dist["pct"][engine.cap_fraction(term)])
        else:
            cap = floor
        norm.floor, norm.cap = float(floor), float(cap)
        if cap <= floor:
            raw = f"CASE WHEN {col} >= {_f8(cap)} THEN {_f8(100)} ELSE {_f8(0)} END"
        else:
            raw = (f"CAST(100 AS DOUBLE PRECISION) * (least(greatest({col}, {_f8(floor)}), "
                   f"{_f8(cap)}) - {_f8(floor)}) / {_f8(float(cap) - float(floor))}")
    else:
        raise ValueError(f"unknown normalisation method {term.method!r}")
    if term.direction == "lower":
        raw = f"{_f8(100)} - ({raw})"
    return (f"CASE WHEN {col} IS NULL THEN {_f8(term.missing_score)} ELSE {raw} END", norm)


def _round(expr: str, digits: int) -> str:
    """``numpy.round(x, digits)`` in SQL: ``rint(x · 10ᵈ) / 10ᵈ`` in double precision."""
    scale = _f8(10.0 ** digits)
    return f"(round(({expr}) * {scale}) / {scale})"


def score_in_sql(session: Any, feat: str, stage: str, plan: _Plan
                 ) -> list[dict[str, Any]]:
    """Create the staging table ``stage`` from the feature table ``feat`` in one
    statement (PostgreSQL); returns the run's term snapshots."""
    dists = feature_distributions(session, feat, plan)
    high, medium = tier_bounds()
    snapshots, inner, outer, total = [], ["contact_id"], [], []
    for j, term in enumerate(plan.terms):
        col = plan.column(j)
        snap = _snapshot(term, float(plan.weights[j]), plan.available[j])
        if col is None:
            outer += [f"CAST(NULL AS DOUBLE PRECISION) AS v{j}",
                      f"CAST(NULL AS DOUBLE PRECISION) AS s{j}"]
        else:
            expr, norm = _norm_sql(term, col, dists[col])
            snap.update(norm.to_dict())
            inner += [f"{col} AS x{j}", f"{expr} AS y{j}"]
            outer += [f"{_round(f'x{j}', 4)} AS v{j}", f"{_round(f'y{j}', 2)} AS s{j}"]
            total.append(f"{_f8(plan.weights[j])} * y{j}")
        snapshots.append(snap)
    value = _round(" + ".join(total), 2) if plan.weights.sum() > 0 and total else _f8(0)
    tier = (f"CASE WHEN t.value >= {_f8(high)} THEN 'high' WHEN t.value >= {_f8(medium)} "
            f"THEN 'medium' ELSE 'low' END")
    pairs = ", ".join(f"t.v{j}, t.s{j}" for j in range(len(plan.terms)))
    session.connection().execute(text(
        f"CREATE TEMPORARY TABLE {stage} AS "
        f"SELECT t.contact_id, CAST(t.value AS NUMERIC(6,2)) AS value, "
        f"CAST({tier} AS VARCHAR(8)) AS tier{', ' + pairs if pairs else ''} "
        f"FROM (SELECT s.contact_id, {value} AS value{''.join(', ' + o for o in outer)} "
        f"FROM (SELECT {', '.join(inner)} FROM {feat}) s) t"))
    return snapshots


# ---- on SQLite: numpy


def _read_features(session: Any, feat: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    rows = session.connection().execute(text(
        f"SELECT contact_id{''.join(f', f{i}' for i in range(k))} FROM {feat} "
        "ORDER BY contact_id")).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    cols = np.full((len(rows), k), np.nan)
    for i in range(k):
        cols[:, i] = np.fromiter((np.nan if r[i + 1] is None else float(r[i + 1]) for r in rows),
                                 dtype=float, count=len(rows))
    return ids, cols


def score_in_numpy(session: Any, feat: str, stage: str, plan: _Plan
                   ) -> list[dict[str, Any]]:
    """Create the staging table ``stage`` from ``feat`` by reading it into numpy
    (:func:`score_matrix`): the same values as :func:`score_in_sql`."""
    ids, cols = _read_features(session, feat, len(plan.features))
    matrix = np.full((len(ids), len(plan.terms)), np.nan)
    for j in range(len(plan.terms)):
        col = plan.column(j)
        if col is not None:
            matrix[:, j] = cols[:, int(col[1:])]
    scores, values, snapshots = score_matrix(plan.terms, matrix, plan.available)
    high, medium = tier_bounds()
    _stage(session, stage, ids, values, engine.tiers(values, high, medium), matrix, scores)
    return snapshots


def _stage(session: Any, name: str, ids: np.ndarray, values: np.ndarray, tier: np.ndarray,
           matrix: np.ndarray, scores: np.ndarray) -> None:
    """Load numpy results into the temporary table ``name``."""
    conn = session.connection()
    k = matrix.shape[1]
    cols = _stage_columns(k)
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} ("
                      + ", ".join(f"{c} {t}" for c, t in cols) + ")"))
    data = [ids.tolist(), values.tolist(), tier.tolist()]
    for j in range(k):
        data.append(np.round(matrix[:, j], 4).tolist())
        data.append(np.round(scores[:, j], 2).tolist())
    rows = [tuple(None if isinstance(v, float) and v != v else v for v in row)
            for row in zip(*data)]
    names = [c for c, _ in cols]
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur, cur.copy(f"COPY {name} ({', '.join(names)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
    else:
        marks = ", ".join("?" for _ in names)
        conn.connection.dbapi_connection.executemany(
            f"INSERT INTO {name} VALUES ({marks})", rows)


# ---- applying the staged scores


def _json_pairs(dialect: str, k: int) -> str:
    if dialect == "postgresql":
        pair = "json_build_array(s.v{j}, s.s{j})"
        return "json_build_array(" + ", ".join(pair.format(j=j) for j in range(k)) + ")"
    pair = "json_array(s.v{j}, s.s{j})"
    return "json_array(" + ", ".join(pair.format(j=j) for j in range(k)) + ")"


def _signature(terms: list[dict[str, Any]] | None) -> list[tuple]:
    """What an explanation reads from a run's terms (labels, weights, methods)."""
    return [(t.get("feature"), t.get("label"), t.get("weight"), t.get("available"),
             t.get("method"), t.get("direction"), t.get("missing_score"))
            for t in terms or []]


def apply_stage(session: Any, stage: str, model_id: int, run_id: int, k: int,
                rewrite_all: bool) -> dict[str, Any]:
    """Write the staged scores of a model: history for changed values or tiers,
    ``UPDATE`` of changed rows (all of them with ``rewrite_all``), ``INSERT`` of
    new customers, ``DELETE`` of gone ones.  Returns the row counts and times."""
    conn = session.connection()
    dialect = conn.dialect.name
    params = {"m": model_id, "r": run_id, "now": utcnow()}
    explanation = _json_pairs(dialect, k)
    out: dict[str, Any] = {}

    def run(name: str, sql: str) -> None:
        started = time.perf_counter()
        out[name] = conn.execute(text(sql), params).rowcount
        out[f"{name}_s"] = round(time.perf_counter() - started, 3)

    if dialect == "postgresql":
        conn.execute(text(f"ANALYZE {stage}"))
    run("history",
        f"INSERT INTO scoring_history (model_id, contact_id, value, tier, computed_at, run_id) "
        f"SELECT :m, s.contact_id, s.value, s.tier, :now, :r FROM {stage} s "
        f"LEFT JOIN scoring_customer_score c ON c.model_id = :m AND c.contact_id = s.contact_id "
        f"WHERE c.id IS NULL OR c.value <> s.value OR c.tier <> s.tier")
    target = "c" if dialect == "postgresql" else "scoring_customer_score"
    changed = "" if rewrite_all else (
        f" AND ({target}.value <> s.value OR {target}.tier <> s.tier "
        f"OR CAST({target}.explanation AS TEXT) IS DISTINCT FROM CAST({explanation} AS TEXT))")
    # SQLite (≥ 3.33) has UPDATE … FROM but cannot alias the target
    alias = " c" if dialect == "postgresql" else ""
    run("updated",
        f"UPDATE scoring_customer_score{alias} SET value = s.value, tier = s.tier, "
        f"run_id = :r, computed_at = :now, explanation = {explanation} FROM {stage} s "
        f"WHERE {target}.model_id = :m AND {target}.contact_id = s.contact_id{changed}")
    run("inserted",
        f"INSERT INTO scoring_customer_score (model_id, contact_id, value, tier, run_id, "
        f"computed_at, explanation) SELECT :m, s.contact_id, s.value, s.tier, :r, :now, "
        f"{explanation} FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM scoring_customer_score c "
        f"WHERE c.model_id = :m AND c.contact_id = s.contact_id)")
    run("deleted",
        f"DELETE FROM scoring_customer_score WHERE model_id = :m AND NOT EXISTS "
        f"(SELECT 1 FROM {stage} s WHERE s.contact_id = scoring_customer_score.contact_id)")
    return out


def recompute_model(session: Any, model: ScoringModel, in_sql: bool | None = None
                    ) -> ScoringRun:
    """Recompute every contact's score in ``model`` (set-based); returns the run.

    ``in_sql`` chooses how the scores are computed (default: in SQL on
    PostgreSQL, numpy elsewhere); both give the same values."""
    return recompute_model_counted(session, model, in_sql)[0]


def recompute_model_counted(session: Any, model: ScoringModel, in_sql: bool | None = None
                            ) -> tuple[ScoringRun, dict[str, Any]]:
    """:func:`recompute_model`, also returning what it wrote (rows updated,
    inserted, deleted, history) and how long each step took."""
    started = time.perf_counter()
    previous = last_full_run(session, model.id)
    run = ScoringRun(model_id=model.id, kind="full", started_at=utcnow())
    session.add(run)
    session.flush()
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    tune_session(session)
    plan = _plan(model)
    feat, stage = _temp_name("features"), _temp_name("stage")
    run.customers = load_features(session, feat, plan.features)
    counts: dict[str, Any] = {"features_s": round(time.perf_counter() - started, 3)}
    score = score_in_sql if (postgres if in_sql is None else in_sql) else score_in_numpy
    snapshots = score(session, feat, stage, plan)
    counts["scores_s"] = round(time.perf_counter() - started - counts["features_s"], 3)
    if plan.terms:
        rewrite_all = previous is None or _signature(previous.terms) != _signature(snapshots)
        counts.update(apply_stage(session, stage, model.id, run.id, len(plan.terms),
                                  rewrite_all))
    conn.execute(text(f"DROP TABLE {stage}"))
    conn.execute(text(f"DROP TABLE {feat}"))
    run.terms = snapshots
    run.finished_at = utcnow()
    run.seconds = round(time.perf_counter() - started, 3)
    session.flush()
    return run, counts


def active_models(session: Any, keys: Iterable[str] | None = None) -> list[ScoringModel]:
    stmt = select(ScoringModel).where(ScoringModel.active.is_(True)).order_by(ScoringModel.id)
    if keys:
        stmt = stmt.where(ScoringModel.key.in_(list(keys)))
    return list(session.scalars(stmt))


def tune_session(session: Any) -> None:
    """For the rest of this transaction on PostgreSQL: memory for large sorts
    and hashes, and no JIT (its compile time outweighs the gain here)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        conn.execute(text("SET LOCAL jit = off"))


def recompute_all(models: list[str] | None = None) -> dict[str, Any]:
    """Job ``scoring.recompute``: recompute every active model (or those named)
    and the extra scores, in one transaction, reading the purchase lines once."""
    from trellis_scoring import extras, purchase_data

    session = db.session
    tune_session(session)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with purchase_data.materialised(session):
        seconds = {"purchase_lines": round(time.perf_counter() - started, 3)}
        for model in active_models(session, models):
            run, counts = recompute_model_counted(session, model)
            out[model.key] = {"run_id": run.id, "customers": run.customers,
                              "seconds": run.seconds, **counts}
            seconds[f"model:{model.key}"] = run.seconds
        extra = extras.recompute_extras(session)
    seconds.update(extra.pop("seconds", {}))
    out.update(extra)
    commit = time.perf_counter()
    session.commit()
    seconds["commit"] = round(time.perf_counter() - commit, 3)
    out["seconds"] = seconds
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
