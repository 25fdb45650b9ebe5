"""The maths of weighted models, as pure vectorised functions (numpy, no database).

Normalisation turns a feature's raw values (one per customer, ``NaN`` where
the customer has none) into 0–100 scores:

* ``percentile`` — the percentile rank, exactly SQL's ``PERCENT_RANK()`` × 100:
  ``100 · (number of customers with a lower value) / (n − 1)``; ties share the
  lowest rank, the lowest value scores 0, the highest 100 (a single customer: 0).
* ``minmax`` — capped min-max: ``100 · (clip(v, floor, cap) − floor) / (cap − floor)``.
  ``floor`` defaults to the lowest value, ``cap`` to the ``cap_percentile``-th
  percentile of the values (linear interpolation, exactly PostgreSQL's
  ``percentile_cont``: :func:`percentile_cont`), so a few very large customers
  do not squash everyone else to 0.

``direction="lower"`` scores ``100 − score`` (fewer days since the last
purchase is better).  Customers without a value get the term's
``missing_score``.  The model's value is ``Σ wᵢ · scoreᵢ`` with the weights
divided by their sum (so they sum to 1), summed term by term in the model's
order and rounded to 2 decimals (half to even, as ``numpy.round`` and
PostgreSQL's ``round(double precision)``).

Every operation here is written in the order PostgreSQL evaluates the same
definitions in SQL (``trellis_scoring.compute`` scores there on PostgreSQL),
so both give bit-identical values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

#: How many quantiles of a feature's distribution a run keeps for scoring single
#: customers incrementally (all values are kept when there are at most this many).
QUANTILES = 1001


@dataclass(frozen=True)
class Term:
    """One term of a weighted model (see :class:`trellis_scoring.models.ScoringTerm`)."""

    feature: str
    weight: float
    method: str = "percentile"
    direction: str = "higher"
    floor: float | None = None
    cap: float | None = None
    cap_percentile: float | None = 95.0
    missing_score: float = 0.0
    label: str = ""


@dataclass
class Normalisation:
    """What a term's normalisation used: bounds for min-max, the distribution
    (all values, or quantiles of them) for percentile ranks."""

    method: str
    direction: str
    missing_score: float
    floor: float | None = None
    cap: float | None = None
    n: int = 0
    quantiles: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "direction": self.direction,
                "missing_score": self.missing_score, "floor": self.floor, "cap": self.cap,
                "n": self.n, "quantiles": self.quantiles}


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """``PERCENT_RANK() × 100`` of each value among ``values`` (no ``NaN`` allowed)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n <= 1:
        return np.zeros(n)
    lower = np.searchsorted(np.sort(values), values, side="left")
    return 100.0 * lower / (n - 1)


def capped_minmax(values: np.ndarray, floor: float, cap: float) -> np.ndarray:
    """``100 · (clip(v, floor, cap) − floor) / (cap − floor)``; with ``cap <= floor``
    a value at or above the cap scores 100 and anything else 0."""
    values = np.asarray(values, dtype=float)
    if cap <= floor:
        return np.where(values >= cap, 100.0, 0.0)
    return 100.0 * (np.clip(values, floor, cap) - floor) / (cap - floor)


def quantile_fractions() -> list[float]:
    """The fractions (0 … 1) of the :data:`QUANTILES` quantiles a run keeps."""
    return np.linspace(0, 1, QUANTILES).tolist()


def percentile_cont(sorted_values: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """PostgreSQL's ``percentile_cont(fractions) WITHIN GROUP (ORDER BY v)`` of
    the ascending ``sorted_values`` (at least one): position ``p · (n − 1)``,
    ``lo + (p·(n−1) − ⌊p·(n−1)⌋) · (hi − lo)`` between its neighbours —
    the same floating-point operations in the same order."""
    s = np.asarray(sorted_values, dtype=float)
    pos = np.asarray(fractions, dtype=float) * float(len(s) - 1)
    first = np.floor(pos)
    second = np.ceil(pos).astype(np.int64)
    lo = s[first.astype(np.int64)]
    hi = s[second]
    return np.where(second > first, lo + (pos - first) * (hi - lo), lo)


def _quantiles(present: np.ndarray) -> list[float]:
    ordered = np.sort(present)
    if len(present) <= QUANTILES:
        return ordered.tolist()
    return percentile_cont(ordered, quantile_fractions()).tolist()


def cap_fraction(term: Term) -> float:
    """The fraction (0–1) of the values below a min-max term's percentile cap."""
    return (term.cap_percentile if term.cap_percentile is not None else 100.0) / 100.0


def normalise(values: np.ndarray, term: Term) -> tuple[np.ndarray, Normalisation]:
    """0–100 scores of one feature over all customers (``NaN``: no value), and
    the parameters used."""
    values = np.asarray(values, dtype=float)
    present = ~np.isnan(values)
    known = values[present]
    scores = np.full(len(values), float(term.missing_score))
    norm = Normalisation(term.method, term.direction, float(term.missing_score), n=len(known))
    if term.method == "percentile":
        raw = percentile_rank(known)
        norm.quantiles = _quantiles(known)
    elif term.method == "minmax":
        floor = term.floor if term.floor is not None else (
            float(known.min()) if len(known) else 0.0)
        if term.cap is not None:
            cap = term.cap
        elif len(known):
            cap = float(percentile_cont(np.sort(known), [cap_fraction(term)])[0])
        else:
            cap = floor
        norm.floor, norm.cap = float(floor), float(cap)
        raw = capped_minmax(known, floor, cap)
    else:
        raise ValueError(f"unknown normalisation method {term.method!r}")
    if term.direction == "lower":
        raw = 100.0 - raw
    scores[present] = raw
    return scores, norm


def normalise_one(value: float | None, norm: Normalisation) -> float:
    """The score of a single value against a stored normalisation (incremental
    updates): exact for min-max; for percentile ranks exact while the run kept
    every value, interpolated between its quantiles otherwise."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return norm.missing_score
    if norm.method == "minmax":
        raw = float(capped_minmax(np.array([value]), norm.floor or 0.0,
                                  norm.cap if norm.cap is not None else 0.0)[0])
    else:
        q = np.asarray(norm.quantiles, dtype=float)
        if len(q) <= 1:
            raw = 0.0
        elif norm.n <= QUANTILES:  # every value: rank among them (as if it were one of them)
            raw = 100.0 * float(np.searchsorted(q, value, side="left")) / (len(q) - 1)
        else:
            raw = 100.0 * float(np.interp(value, q, np.linspace(0, 1, len(q))))
        raw = min(max(raw, 0.0), 100.0)
    return 100.0 - raw if norm.direction == "lower" else raw


def normalised_weights(weights: Sequence[float]) -> np.ndarray:
    """The weights divided by their sum.  Raises ``ValueError`` for a negative
    weight or when they sum to 0."""
    w = np.asarray(weights, dtype=float)
    if (w < 0).any():
        raise ValueError("weights must not be negative")
    total = w.sum()
    if total <= 0:
        raise ValueError("the weights must not all be 0")
    return w / total


def weighted_sum(weights: Sequence[float], scores: np.ndarray) -> np.ndarray:
    """``w₀·s₀ + w₁·s₁ + …`` per row of ``scores`` (one column per weight), added
    left to right (as SQL adds the same terms), not rounded."""
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    total = np.zeros(s.shape[0])
    for j, w in enumerate(weights):
        total = total + float(w) * s[:, j]
    return total


def weighted_value(weights: Sequence[float], scores: np.ndarray) -> np.ndarray:
    """``Σ wᵢ · scoreᵢ`` per customer, weights normalised to sum 1, rounded to 2
    decimals.  ``scores`` has one column per weight (or is one row)."""
    w = normalised_weights(weights)
    s = np.asarray(scores, dtype=float)
    total = weighted_sum(w, s)
    return np.round(total if s.ndim > 1 else total[0], 2)


def tiers(values: np.ndarray, high_from: float, medium_from: float) -> np.ndarray:
    """``high`` from ``high_from``, ``medium`` from ``medium_from``, else ``low``."""
    values = np.asarray(values, dtype=float)
    return np.where(values >= high_from, "high",
                    np.where(values >= medium_from, "medium", "low"))


def tier_of(value: float, high_from: float, medium_from: float) -> str:
    return str(tiers(np.array([value]), high_from, medium_from)[0])


def explain(terms: Sequence[dict[str, Any]], pairs: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Each term of a stored score: feature, label, value, normalised score,
    weight (normalised) and contribution (weight × score), from a run's ``terms``
    and a score's ``explanation`` pairs ``[value, score]``."""
    out = []
    for term, pair in zip(terms, pairs or []):
        value, score = (pair + [None, None])[:2] if isinstance(pair, list) else (None, None)
        weight = float(term.get("weight") or 0.0)
        out.append({"feature": term["feature"], "label": term.get("label") or term["feature"],
                    "available": term.get("available", True), "value": value,
                    "score": None if score is None else round(float(score), 2),
                    "weight": round(weight, 6), "method": term.get("method"),
                    "contribution": None if score is None else round(weight * float(score), 2)})
    return out
