"""Forecast and win rate against hand-computed figures, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from trellis.db import db


def seed(app, ids):
    """Six deals with known stages, amounts, currencies, owners and dates."""
    from trellis_sales.models import Deal, Lead, Stage

    with app.app_context():
        stage = {s.name: s for s in db.session.scalars(select(Stage))}
        rows = [  # name, stage, amount, currency, probability override, close, owner
            ("a", "Proposal", "1000", "EUR", None, date(2026, 12, 10), "rep"),       # 50%
            ("b", "Negotiation", "2000", "EUR", None, date(2026, 12, 20), "rep"),    # 75%
            ("c", "Qualification", "500", "USD", None, date(2026, 12, 5), "rep2"),   # 10%
            ("d", "Proposal", "4000", "EUR", 80, date(2027, 1, 15), "rep2"),         # 80%
            ("e", "Won", "3000", "EUR", None, date(2026, 12, 1), "rep"),
            ("f", "Lost", "700", "EUR", None, date(2026, 12, 2), "rep2"),
        ]
        deals = {}
        for name, st, amount, cur, prob, close, owner in rows:
            deal = Deal(name=name, stage=stage[st], pipeline_id=stage[st].pipeline_id,
                        amount=Decimal(amount), currency=cur, probability=prob,
                        expected_close=close, owner_id=ids[owner],
                        lost_reason="Price" if st == "Lost" else None)
            db.session.add(deal)
            deals[name] = deal
        db.session.flush()
        deals["e"].won_at = datetime(2026, 12, 3, tzinfo=timezone.utc)
        deals["f"].lost_at = datetime(2026, 12, 4, tzinfo=timezone.utc)
        db.session.add(Lead(last_name="L", source="web_form", status="converted",
                            converted_deal_id=deals["e"].id, owner_id=ids["rep"]))
        db.session.commit()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request, trellis_app_factory, make_user, api_login):
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    app = trellis_app_factory(plugins=["sales"], database_url=database_url)
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"])}
    seed(app, ids)
    client = app.test_client()
    return app, client, {"admin": api_login(client), "rep": api_login(client, "rep", "pw-123456")}, ids


def test_forecast_by_month_matches_hand_computed_figures(site):
    app, client, headers, ids = site
    rows = client.get("/api/v1/sales_report/forecast", headers=headers["admin"]).get_json()[
        "result"]
    assert rows == [
        # December EUR: a 1000×50% + b 2000×75% = 2000 weighted; best 3000; committed (≥75%) 2000
        {"month": "2026-12", "currency": "EUR", "open_deals": 2, "weighted": "2000.00",
         "best_case": "3000.00", "committed": "2000.00", "won": "3000.00"},
        {"month": "2026-12", "currency": "USD", "open_deals": 1, "weighted": "50.00",
         "best_case": "500.00", "committed": "0.00", "won": "0.00"},
        # January: d 4000 × 80% (overridden) = 3200, committed since 80 ≥ 75
        {"month": "2027-01", "currency": "EUR", "open_deals": 1, "weighted": "3200.00",
         "best_case": "4000.00", "committed": "4000.00", "won": "0.00"},
    ]


def test_forecast_by_stage_and_a_reps_own_view(site):
    app, client, headers, ids = site
    by_stage = client.get("/api/v1/sales_report/forecast?group=stage&commit_from=50",
                          headers=headers["admin"]).get_json()["result"]
    proposal = [r for r in by_stage if r["stage"] == "Proposal"]
    assert proposal == [{"stage": "Proposal", "currency": "EUR", "open_deals": 2,
                         "weighted": "3700.00", "best_case": "5000.00",
                         "committed": "5000.00", "won": "0.00"}]
    mine = client.get("/api/v1/sales_report/forecast?group=owner",
                      headers=headers["rep"]).get_json()["result"]
    assert [(r["owner"], r["currency"], r["weighted"]) for r in mine] == [
        (ids["rep"], "EUR", "2000.00")]  # only the rep's deals a, b (e is won)


def test_win_rate_by_owner_source_and_month(site):
    app, client, headers, ids = site
    admin = headers["admin"]
    by_owner = client.get("/api/v1/sales_report/win_rate", headers=admin).get_json()["result"]
    assert by_owner == [{"owner": ids["rep"], "won": 1, "lost": 0, "win_rate": 100.0},
                        {"owner": ids["rep2"], "won": 0, "lost": 1, "win_rate": 0.0}]
    by_source = client.get("/api/v1/sales_report/win_rate?group=source",
                           headers=admin).get_json()["result"]
    assert by_source == [{"source": "direct", "won": 0, "lost": 1, "win_rate": 0.0},
                         {"source": "web_form", "won": 1, "lost": 0, "win_rate": 100.0}]
    by_month = client.get("/api/v1/sales_report/win_rate?group=month",
                          headers=admin).get_json()["result"]
    assert by_month == [{"month": "2026-12", "won": 1, "lost": 1, "win_rate": 50.0}]
    later = client.get("/api/v1/sales_report/win_rate?since=2026-12-04",
                       headers=admin).get_json()["result"]
    assert later == [{"owner": ids["rep2"], "won": 0, "lost": 1, "win_rate": 0.0}]


def test_report_parameters_are_validated(site):
    app, client, headers, ids = site
    bad = client.get("/api/v1/sales_report/forecast?group=planet&commit_from=101",
                     headers=headers["admin"])
    assert bad.status_code == 400
    assert bad.get_json()["message"] == {
        "group": ["Must be one of: month, owner, stage."],
        "commit_from": ["Must be a whole number from 0 to 100."]}
    bad = client.get("/api/v1/sales_report/win_rate?since=yesterday", headers=headers["admin"])
    assert bad.get_json()["message"] == {"since": ["Not a valid date, e.g. 2026-01-31."]}
    assert client.get("/api/v1/sales_report/forecast").status_code == 401
