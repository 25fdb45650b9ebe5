"""The maths, with hand-computed expectations (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from trellis_scoring import engine
from trellis_scoring.engine import Term


def test_reference_case_crm_value_is_83():
    # α interaction frequency 0.2, β purchase amount 0.4, γ satisfaction 0.2, δ loyalty 0.2.
    # The scores 80, 90, 85, 75 give 83 when the 0.4 weight meets the 85:
    # 0.2·80 + 0.4·85 + 0.2·90 + 0.2·75 = 16 + 34 + 18 + 15 = 83.
    value = engine.weighted_value([0.2, 0.4, 0.2, 0.2], np.array([80, 85, 90, 75]))
    assert value == 83.0
    # taken literally in the order written (0.4 on the 90) the same formula gives 84:
    # 16 + 36 + 17 + 15 (docs/scoring.md explains the discrepancy in the issue text)
    assert engine.weighted_value([0.2, 0.4, 0.2, 0.2], np.array([80, 90, 85, 75])) == 84.0


def test_weights_are_normalised_to_sum_one_and_validated():
    # 1, 2, 1, 1 is the same model as 0.2, 0.4, 0.2, 0.2
    assert engine.weighted_value([1, 2, 1, 1], np.array([80, 85, 90, 75])) == 83.0
    assert engine.normalised_weights([1, 3]).tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match="negative"):
        engine.normalised_weights([0.5, -0.1])
    with pytest.raises(ValueError, match="all be 0"):
        engine.normalised_weights([0, 0])
    # many customers at once: one row each
    rows = engine.weighted_value([0.5, 0.5], np.array([[100, 0], [40, 60], [0, 0]]))
    assert rows.tolist() == [50.0, 50.0, 0.0]


def test_percentile_rank_is_sql_percent_rank_times_100():
    # sorted 10, 20, 20, 40, 50: lower counts 0, 1, 1, 3, 4 over n-1 = 4
    values = np.array([20, 10, 50, 20, 40])
    assert engine.percentile_rank(values).tolist() == [25.0, 0.0, 100.0, 25.0, 75.0]
    assert engine.percentile_rank(np.array([7.0])).tolist() == [0.0]


def test_capped_min_max_with_fixed_and_percentile_caps():
    # floor 0, cap 200: 50 -> 25, 300 -> capped at 100, -5 -> 0
    assert engine.capped_minmax(np.array([50, 300, -5, 200]), 0, 200).tolist() == [
        25.0, 100.0, 0.0, 100.0]
    # cap at the 75th percentile of 0, 10, 20, 30, 1000: position 0.75·4 = 3 -> 30;
    # floor = min = 0; so 10 -> 33.33, 20 -> 66.67, 30 and 1000 -> 100
    scores, norm = engine.normalise(np.array([0, 10, 20, 30, 1000]),
                                    Term("x", 1, method="minmax", cap_percentile=75))
    assert (norm.floor, norm.cap) == (0.0, 30.0)
    assert np.round(scores, 2).tolist() == [0.0, 33.33, 66.67, 100.0, 100.0]


def test_missing_values_and_lower_is_better():
    values = np.array([1.0, np.nan, 3.0, 5.0])
    scores, _ = engine.normalise(values, Term("days", 1, method="minmax", floor=1, cap=5,
                                              direction="lower", missing_score=10))
    # 1 -> 0 -> 100; 3 -> 50 -> 50; 5 -> 100 -> 0; missing -> 10
    assert scores.tolist() == [100.0, 10.0, 50.0, 0.0]
    scores, norm = engine.normalise(values, Term("n", 1))
    assert scores.tolist() == [0.0, 0.0, 50.0, 100.0] and norm.n == 3


def test_single_values_score_against_a_stored_normalisation():
    _, norm = engine.normalise(np.array([10, 20, 30, 40, 50]), Term("n", 1))
    # as if it were one of the five: 35 has three lower values -> 3/4
    assert engine.normalise_one(35, norm) == 75.0
    assert engine.normalise_one(None, norm) == 0.0
    _, mm = engine.normalise(np.array([0, 100]), Term("m", 1, method="minmax", cap=80))
    assert engine.normalise_one(40, mm) == 50.0
    assert engine.normalise_one(500, mm) == 100.0


def test_tiers_by_thresholds():
    assert engine.tiers(np.array([70, 69.99, 40, 39.99, 0]), 70, 40).tolist() == [
        "high", "medium", "medium", "low", "low"]
    assert engine.tier_of(83, 70, 40) == "high"


def test_explain_gives_contributions():
    terms = [{"feature": "a", "label": "A", "weight": 0.4, "method": "minmax"},
             {"feature": "b", "label": "B", "weight": 0.6, "method": "percentile"}]
    rows = engine.explain(terms, [[120.0, 50.0], [3, 100.0]])
    assert [(r["feature"], r["value"], r["score"], r["weight"], r["contribution"])
            for r in rows] == [("a", 120.0, 50.0, 0.4, 20.0), ("b", 3, 100.0, 0.6, 60.0)]
