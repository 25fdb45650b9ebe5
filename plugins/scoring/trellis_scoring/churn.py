"""Churn risk (logistic regression on the customers' own history) and customer
lifetime value.

**Training.**  With ``H`` = ``churn_horizon_days`` (default 90) and the cut-off
``T0 = now − H``, every customer who bought before ``T0`` is an example:
features as of ``T0`` — log(1 + orders), log(1 + amount spent), years since
the last purchase, log(1 + activities in the 90 days before) — and the label
*churned* = no purchase after ``T0``.  One SQL query with conditional
aggregates over the orders (:mod:`trellis_scoring.purchase_data`) reads them
for all customers.  The features are standardised and a
logistic regression is fitted by Newton's method (numpy, L2 1e-3) on a random
75 %; the other 25 % give the hold-out AUC, stored with the model
(``scoring_churn_model``).

**Scoring.**  The same features as of now give each buyer the probability of
churning within the next ``H`` days.

**Lifetime value.**  ``annual value = amount spent / max(years since the first
purchase, 1)``; yearly retention ``r = (1 − p)^(365 / H)`` from the churn
probability ``p``; ``CLV = annual value · r / (1 + d − r)`` with the discount
rate ``d`` (``clv_discount_rate``, default 0.10) — the value of a customer
who keeps buying at the same rate while retained, discounted yearly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Float, case, cast, func, insert, literal_column, select, text

from trellis.db import utcnow
from trellis.models import Activity
from trellis.sqlfuncs import days_between
from trellis_scoring import purchase_data
from trellis_scoring.sync import replace_rows
from trellis_scoring.models import ChurnModel, CustomerValue

FEATURES = ("log_orders", "log_spent", "years_since_last_purchase", "log_activities_90d")
HOLDOUT = 0.25
SEED = 20261202


# ------------------------------------------------------------------ maths


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3,
                 iterations: int = 30) -> np.ndarray:
    """Coefficients ``[intercept, w…]`` of a logistic regression (Newton / IRLS)."""
    xb = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(xb.shape[1])
    reg = l2 * np.eye(xb.shape[1])
    reg[0, 0] = 0.0
    for _ in range(iterations):
        p = sigmoid(xb @ beta)
        w = p * (1 - p)
        grad = xb.T @ (p - y) + reg @ beta
        hess = (xb * w[:, None]).T @ xb + reg
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(beta)), grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return sigmoid(beta[0] + np.asarray(x, dtype=float) @ beta[1:])


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties counted half)."""
    y = np.asarray(y).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(p, dtype=float), return_inverse=True,
                                   return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def clv(annual_value: np.ndarray, retention: np.ndarray, discount: float) -> np.ndarray:
    """``annual value · r / (1 + d − r)``."""
    r = np.asarray(retention, dtype=float)
    return np.asarray(annual_value, dtype=float) * r / (1.0 + discount - r)


# ------------------------------------------------------------------ data


def _history_select(now: Any, t0: Any) -> Any:
    """Per buyer (one row each): contact id; orders, spent, days since the last
    purchase, all before ``t0``; whether they bought only after ``t0``; orders,
    spent, days since the last and the first purchase as of ``now``; activities
    in the 90 days before ``t0`` and before ``now``."""
    lines = purchase_data.orders().subquery()
    before = lines.c.ordered_at < t0
    per = (select(lines.c.contact_id.label("contact_id"),
                  func.count(func.distinct(case((before, lines.c.order_id)))).label("o0"),
                  func.coalesce(func.sum(case((before, lines.c.amount), else_=0)), 0)
                  .label("m0"),
                  days_between(func.max(case((before, lines.c.ordered_at))), t0).label("d0"),
                  func.max(case((before, 0), else_=1)).label("after"),
                  func.count(func.distinct(lines.c.order_id)).label("o1"),
                  func.coalesce(func.sum(lines.c.amount), 0).label("m1"),
                  days_between(func.max(lines.c.ordered_at), now).label("d1"),
                  days_between(func.min(lines.c.ordered_at), now).label("first"))
           .where(lines.c.contact_id.is_not(None))
           .group_by(lines.c.contact_id)).subquery()
    acts = (select(Activity.contact_id.label("contact_id"),
                   func.sum(case(((Activity.occurred_at >= t0 - timedelta(days=90))
                                  & (Activity.occurred_at < t0), 1), else_=0)).label("a0"),
                   func.sum(case((Activity.occurred_at >= now - timedelta(days=90), 1),
                                 else_=0)).label("a1"))
            .where(Activity.contact_id.is_not(None),
                   Activity.occurred_at >= t0 - timedelta(days=90))
            .group_by(Activity.contact_id)).subquery()
    return (select(per, func.coalesce(acts.c.a0, 0).label("a0"),
                   func.coalesce(acts.c.a1, 0).label("a1"))
            .outerjoin(acts, acts.c.contact_id == per.c.contact_id))


def read_columns(session: Any, stmt: Any) -> list[np.ndarray]:
    """The columns of ``stmt`` as float arrays (``NULL``: ``NaN``).  On
    PostgreSQL one row of ``array_agg`` arrays (parsed by the driver in C), not
    a Python object per value; rows in no particular order."""
    sub = stmt.subquery()
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        aggs = [func.array_agg(func.coalesce(cast(c, Float(53)), literal_column("'NaN'")))
                for c in sub.c]
        row = conn.execute(select(*aggs)).one()
        return [np.array(col if col is not None else [], dtype=float) for col in row]
    rows = conn.execute(select(sub)).all()
    return [np.fromiter((np.nan if v is None else float(v) for v in col), dtype=float,
                        count=len(rows))
            for col in (zip(*rows) if rows else [[]] * len(sub.c))]


def _history(session: Any, now: Any, t0: Any) -> dict[str, np.ndarray]:
    """Per buyer, by contact id: features as of ``t0`` and as of ``now``, and the label."""
    cols = read_columns(session, _history_select(now, t0))
    if not len(cols[0]):
        return {}
    order = np.argsort(cols[0], kind="stable")
    (ids, o0, m0, d0, after, o1, m1, d1, first, a0, a1) = [c[order] for c in cols]
    # a purchase after t0 only: "bought after" = 1 and nothing before
    return {
        "ids": ids.astype(np.int64),
        "train_mask": o0 > 0,
        "x_then": np.column_stack([np.log1p(o0), np.log1p(np.maximum(m0, 0)),
                                   np.nan_to_num(d0) / 365.0, np.log1p(a0)]),
        "churned": ~(after == 1),
        "x_now": np.column_stack([np.log1p(o1), np.log1p(np.maximum(m1, 0)),
                                  d1 / 365.0, np.log1p(a1)]),
        "spent": np.maximum(m1, 0),
        "tenure_years": first / 365.0,
    }


def _bulk_replace(session: Any, table: Any, columns: list[str], data: list[list[Any]],
                  constants: dict[str, Any]) -> None:
    """Replace every row of ``table`` (keyed by its first column): ``columns``
    from ``data`` (one list per column), ``constants`` the same in every row.
    Staged by one ``INSERT … SELECT unnest`` of whole columns as arrays on
    PostgreSQL (an ``executemany`` elsewhere), applied by
    :func:`trellis_scoring.sync.replace_rows`."""
    names = columns + list(constants)

    def fill(conn: Any, stage: Any) -> None:
        if not data or not data[0]:
            return
        if conn.dialect.name == "postgresql":
            types = {c.name: c.type.compile(dialect=conn.dialect) for c in table.columns}
            exprs = [f"unnest(CAST(:c{i} AS {types[name]}[]))"
                     for i, name in enumerate(columns)]
            exprs += [f":k_{name}" for name in constants]
            conn.execute(text(f"INSERT INTO {stage.name} ({', '.join(names)}) "
                              f"SELECT {', '.join(exprs)}"),
                         {**{f"c{i}": list(values) for i, values in enumerate(data)},
                          **{f"k_{name}": value for name, value in constants.items()}})
        else:
            conn.execute(insert(stage), [{**dict(zip(columns, r)), **constants}
                                         for r in zip(*data)])

    replace_rows(session, table, columns[0], names, fill)


def recompute_churn_and_clv(session: Any, horizon_days: int, discount: float) -> dict[str, Any]:
    """Train the churn model, then score every buyer's churn probability and CLV."""
    now = utcnow()
    t0 = now - timedelta(days=horizon_days)
    h = _history(session, now, t0)
    if not h:
        return {"churn": None, "clv": 0}
    mask = h["train_mask"]
    x, y = h["x_then"][mask], h["churned"][mask].astype(float)
    model = ChurnModel(trained_at=now, features=list(FEATURES), n_train=0, n_test=0,
                       churn_rate=float(y.mean()) if len(y) else None)
    probability = np.full(len(h["ids"]), model.churn_rate if model.churn_rate is not None
                          else np.nan)
    if len(y) >= 10 and 0 < y.sum() < len(y):
        mean, std = x.mean(axis=0), x.std(axis=0)
        std[std == 0] = 1.0
        z = (x - mean) / std
        test = np.random.default_rng(SEED).random(len(y)) < HOLDOUT
        if test.all() or (~test).all() or len(set(y[~test])) < 2:
            test[:] = False
        beta = fit_logistic(z[~test], y[~test])
        model.auc = round(auc(y[test], predict(beta, z[test])), 4) if test.any() else None
        if model.auc is not None and np.isnan(model.auc):
            model.auc = None
        model.n_train, model.n_test = int((~test).sum()), int(test.sum())
        model.coefficients = {"intercept": float(beta[0]),
                              "weights": dict(zip(FEATURES, map(float, beta[1:]))),
                              "mean": dict(zip(FEATURES, map(float, mean))),
                              "std": dict(zip(FEATURES, map(float, std)))}
        probability = predict(beta, (h["x_now"] - mean) / std)
    session.add(model)
    retention = np.power(1.0 - np.nan_to_num(probability, nan=0.0), 365.0 / horizon_days)
    annual = h["spent"] / np.maximum(h["tenure_years"], 1.0)
    value = clv(annual, retention, discount)
    _bulk_replace(session, CustomerValue.__table__,
                  ["contact_id", "churn_probability", "annual_value", "clv"],
                  [h["ids"].tolist(), np.round(probability, 4).tolist(),
                   np.round(annual, 2).tolist(), np.round(value, 2).tolist()],
                  {"computed_at": now})
    session.flush()
    return {"churn": {"model_id": model.id, "auc": model.auc, "n_train": model.n_train,
                      "n_test": model.n_test, "churn_rate": model.churn_rate},
            "clv": int(len(h["ids"]))}
