"""The full recompute on PostgreSQL, where the scores are computed in SQL: the
hand-computed values of test_scores, the same values as the numpy path to the
last bit on generated data, and re-runs that rewrite only what changed."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from trellis.db import db
from trellis.jobs import execute
from scoring_testkit import add_calls, four_customers
from trellis_scoring import compute, purchase_data
from trellis_scoring.models import (CustomerRfm, CustomerScore, ScoreHistory, ScoringModel,
                                    ScoringTerm)

pytestmark = pytest.mark.postgres


@pytest.fixture
def app(trellis_app_factory, postgres_url):
    return trellis_app_factory(plugins=["sales", "scoring"], database_url=postgres_url)


def scores(app) -> dict[int, tuple[float, str, list]]:
    with app.app_context():
        db.session.remove()
        return {s.contact_id: (float(s.value), s.tier, s.explanation)
                for s in db.session.scalars(select(CustomerScore))}


def test_hand_computed_values_and_lean_reruns(app):
    ids = four_customers(app)
    with app.app_context():
        first = execute("scoring.recompute", {})
    assert first["crm_value"]["inserted"] == 4 and first["crm_value"]["history"] == 4
    got = scores(app)
    assert {c: v[:2] for c, v in got.items()} == {
        ids["A"]: (39.58, "medium"), ids["B"]: (33.33, "medium"),
        ids["C"]: (0.0, "low"), ids["D"]: (64.58, "high")}
    assert got[ids["D"]][2] == [[2, 50], [500, 100], [None, None], [1, 8.33]]
    with app.app_context():
        again = execute("scoring.recompute", {})
        # nothing changed: no row rewritten, no history
        assert (again["crm_value"]["updated"], again["crm_value"]["history"]) == (0, 0)
        add_calls(ids["C"], 5)  # C now has the most interactions: A, C, D move, B stays 0
        db.session.commit()
        third = execute("scoring.recompute", {})
        assert (third["crm_value"]["updated"], third["crm_value"]["history"]) == (3, 3)
        kept = db.session.get(CustomerScore, db.session.scalar(
            select(CustomerScore.id).where(CustomerScore.contact_id == ids["B"])))
        assert kept.run_id == first["crm_value"]["run_id"]  # explained by the run it came from
        # new weights: every row is rewritten under the new run, values or not
        term = db.session.scalar(select(ScoringTerm).where(ScoringTerm.feature ==
                                                           "loyalty_months"))
        term.label = "Months with a purchase"
        db.session.commit()
        fourth = execute("scoring.recompute", {})
        assert (fourth["crm_value"]["updated"], fourth["crm_value"]["history"]) == (4, 0)
        assert {s.run_id for s in db.session.scalars(select(CustomerScore))} == {
            fourth["crm_value"]["run_id"]}
        assert db.session.query(ScoreHistory).count() == 7
        assert db.session.query(CustomerRfm).count() == 3


def _generated_data(app, n: int = 1500) -> None:
    """n contacts with pseudo-random activities and orders (lines of 3 products)."""
    with app.app_context():
        conn = db.session.connection()
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(text(
            "INSERT INTO trellis_contact (first_name, last_name, created_on, updated_on) "
            "SELECT 'C' || g, 'Gen', now(), now() FROM generate_series(1, :n) g"), {"n": n})
        conn.execute(text(
            "INSERT INTO trellis_activity (type, subject, occurred_at, contact_id, plugin) "
            "SELECT 'call', 'x', now() - random() * interval '200 days', c.id, 'test' "
            "FROM trellis_contact c, generate_series(1, 4) k WHERE random() < 0.6"))
        conn.execute(text(
            "INSERT INTO sales_product (sku, name, price, currency, active) "
            "SELECT 'P' || g, 'Product ' || g, 10 * g, 'EUR', true "
            "FROM generate_series(1, 3) g"))
        conn.execute(text(
            "INSERT INTO sales_order (contact_id, ordered_at, currency, total) "
            "SELECT c.id, now() - random() * interval '700 days', 'EUR', "
            "round((random() * 900)::numeric, 2) FROM trellis_contact c, "
            "generate_series(1, 3) k WHERE random() < 0.5"))
        conn.execute(text(
            "INSERT INTO sales_order_line (order_id, product_id, quantity, unit_price, total) "
            "SELECT o.id, p.id, 1, p.price, p.price FROM sales_order o, sales_product p "
            "WHERE random() < 0.5"))
        # a term of each kind: a percentile over > QUANTILES values, lower-is-better
        # min-max with a percentile cap, a fixed cap, a missing score
        model = db.session.scalar(select(ScoringModel).where(ScoringModel.key == "crm_value"))
        model.terms.append(ScoringTerm(feature="days_since_last_purchase", weight=0.3,
                                       method="minmax", direction="lower",
                                       cap_percentile=90, missing_score=12.5, position=9))
        model.terms.append(ScoringTerm(feature="purchase_count", weight=0.15,
                                       method="percentile", direction="lower", position=10))
        db.session.commit()


def test_sql_and_numpy_give_identical_scores(app):
    _generated_data(app)
    with app.app_context():
        session = db.session
        compute.tune_session(session)
        model = session.scalar(select(ScoringModel).where(ScoringModel.key == "crm_value"))
        plan = compute._plan(model)
        with purchase_data.materialised(session):
            compute.load_features(session, "gen_features", plan.features)
            by_sql = compute.score_in_sql(session, "gen_features", "stage_sql", plan)
            by_numpy = compute.score_in_numpy(session, "gen_features", "stage_numpy", plan)
        assert by_sql == by_numpy  # weights, bounds, quantiles
        assert len(by_sql[0]["quantiles"]) == 1001 and by_sql[0]["n"] > 1001
        conn = session.connection()
        assert conn.execute(text("SELECT count(*) FROM stage_sql")).scalar() == 1500
        for a, b in (("stage_sql", "stage_numpy"), ("stage_numpy", "stage_sql")):
            assert conn.execute(text(
                f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT SELECT * FROM {b}) d")
            ).scalar() == 0
        session.rollback()
