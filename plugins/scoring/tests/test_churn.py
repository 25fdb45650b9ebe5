"""Churn risk (logistic regression, hold-out AUC) and lifetime value."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from trellis.db import db
from trellis.jobs import execute
from trellis.models import Contact
from trellis_scoring import churn
from trellis_scoring.models import ChurnModel, CustomerValue


def test_auc_by_hand():
    # pairs (positive, negative): (0.35 > 0.1) (0.35 < 0.4) (0.8 > 0.1) (0.8 > 0.4): 3 of 4
    assert churn.auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert churn.auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5  # a tie counts half


def test_clv_by_hand():
    # 1000 a year, retention 0.8, discount 0.1: 1000 · 0.8 / (1.1 − 0.8) = 2666.67
    assert round(float(churn.clv(np.array([1000.0]), np.array([0.8]), 0.1)[0]), 2) == 2666.67


def test_logistic_regression_learns_a_signal():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 2))
    y = (rng.random(2000) < churn.sigmoid(2.0 * x[:, 0] - 1.0)).astype(float)
    beta = churn.fit_logistic(x, y)
    assert abs(beta[0] + 1.0) < 0.25 and abs(beta[1] - 2.0) < 0.3 and abs(beta[2]) < 0.2
    assert churn.auc(y, churn.predict(beta, x)) > 0.8


def test_churn_model_is_trained_and_every_buyer_scored(trellis_app_factory, api_login):
    from scoring_testkit import add_order
    from trellis.settings import update_settings

    app = trellis_app_factory(plugins=["sales", "scoring"])
    with app.app_context():
        update_settings("scoring", {"recompute_on_events": ""})
        people = [Contact(first_name=f"P{i}", last_name="X") for i in range(40)]
        db.session.add_all(people)
        db.session.commit()
        for i, person in enumerate(people):
            # half keep buying (recently too), half stopped 200+ days ago
            loyal = i % 2 == 0
            for k in range(1 + i % 4):
                add_order(person.id, "100", 150 + 30 * k + (0 if loyal else 60))
            if loyal:
                add_order(person.id, "100", 10)
        db.session.commit()
        result = execute("scoring.recompute", {})
        model = db.session.scalar(select(ChurnModel))
        values = {v.contact_id: v for v in db.session.scalars(select(CustomerValue))}
        ids = [p.id for p in people]
    assert result["churn"]["n_train"] + result["churn"]["n_test"] == 40
    assert model.churn_rate == 0.5 and model.auc is not None and model.auc >= 0.9
    assert set(model.coefficients["weights"]) == set(churn.FEATURES)
    assert len(values) == 40
    loyal_p = np.mean([values[c].churn_probability for c in ids[0::2]])
    gone_p = np.mean([values[c].churn_probability for c in ids[1::2]])
    assert gone_p > 0.7 > 0.3 > loyal_p
    # CLV follows the documented formula from the stored figures
    v = values[ids[0]]
    r = (1 - v.churn_probability) ** (365 / 90)
    assert abs(v.clv - v.annual_value * r / (1.1 - r)) < 0.05
    client = app.test_client()
    body = client.get(f"/api/v1/scoring/contact/{ids[1]}", headers=api_login(client)).get_json()
    assert body["churn"]["probability"] == values[ids[1]].churn_probability
    assert body["clv"]["value"] == values[ids[1]].clv
