"""Sales reports against hand-computed figures, on SQLite and PostgreSQL.

The company currency is EUR (the core setting's default).  The base data has
no exchange rate, so the USD deal is reported as *unconverted*; the
multi-currency test adds USD rates valid from two different days and a GBP
rate that starts after one GBP deal was won (a missing rate again).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import delete, select

from trellis.db import db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


NOV_1 = utc(2026, 11, 1)


def _stages():
    from trellis_sales.models import Stage

    return {s.name: s for s in db.session.scalars(select(Stage))}


def add_deals(ids, rows):
    """rows: name, stage, amount, currency, probability override, close, owner,
    created_on, won/lost at, lost reason."""
    from trellis_sales.models import Deal

    stage = _stages()
    deals = {}
    for name, st, amount, cur, prob, close, owner, created, closed, reason in rows:
        deal = Deal(name=name, stage=stage[st], pipeline_id=stage[st].pipeline_id,
                    amount=Decimal(amount), currency=cur, probability=prob,
                    expected_close=close, owner_id=ids[owner], created_on=created,
                    lost_reason=reason)
        db.session.add(deal)
        deals[name] = (deal, st, closed)
    db.session.flush()
    for deal, st, closed in deals.values():  # the rules stamped "now"; use known days
        if st == "Won":
            deal.won_at = closed
        if st == "Lost":
            deal.lost_at = closed
    db.session.commit()
    return {name: d.id for name, (d, _, _) in deals.items()}


def seed(app, ids):
    """Six deals with known stages, amounts, currencies, owners and dates."""
    from trellis_sales.models import Lead

    with app.app_context():
        deal_ids = add_deals(ids, [
            ("a", "Proposal", "1000", "EUR", None, date(2026, 12, 10), "rep", NOV_1, None, None),
            ("b", "Negotiation", "2000", "EUR", None, date(2026, 12, 20), "rep", NOV_1, None,
             None),
            ("c", "Qualification", "500", "USD", None, date(2026, 12, 5), "rep2", NOV_1, None,
             None),
            ("d", "Proposal", "4000", "EUR", 80, date(2027, 1, 15), "rep2", NOV_1, None, None),
            ("e", "Won", "3000", "EUR", None, date(2026, 12, 1), "rep", utc(2026, 11, 23),
             utc(2026, 12, 3), None),
            ("f", "Lost", "700", "EUR", None, date(2026, 12, 2), "rep2", NOV_1,
             utc(2026, 12, 4), "Price"),
        ])
        db.session.add(Lead(last_name="L", source="web_form", status="converted",
                            converted_deal_id=deal_ids["e"], owner_id=ids["rep"],
                            created_on=utc(2026, 11, 5)))
        db.session.commit()
        return deal_ids


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request, trellis_app_factory, make_user, api_login):
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    app = trellis_app_factory(plugins=["sales"], database_url=database_url)
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"])}
    ids["deals"] = seed(app, ids)
    client = app.test_client()
    return app, client, {"admin": api_login(client), "rep": api_login(client, "rep", "pw-123456")}, ids


def get(client, headers, path):
    response = client.get(f"/api/v1/sales_report/{path}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["result"]


USD_500 = {"currency": "USD", "deals": 1, "weighted": "50.00", "best_case": "500.00",
           "committed": "0.00", "won": "0.00"}


def test_forecast_by_month_with_a_missing_rate(site):
    app, client, headers, ids = site
    assert get(client, headers["admin"], "forecast") == [
        # December: a 1000×50% + b 2000×75% = 2000 weighted; best 3000; committed (≥75%)
        # 2000; e won 3000.  c (500 USD) has no rate: counted, listed, not converted.
        {"month": "2026-12", "currency": "EUR", "open_deals": 3, "weighted": "2000.00",
         "best_case": "3000.00", "committed": "2000.00", "won": "3000.00",
         "unconverted": [USD_500]},
        # January: d 4000 × 80% (overridden) = 3200, committed since 80 ≥ 75
        {"month": "2027-01", "currency": "EUR", "open_deals": 1, "weighted": "3200.00",
         "best_case": "4000.00", "committed": "4000.00", "won": "0.00", "unconverted": []},
    ]


def test_forecast_by_stage_total_and_a_reps_own_view(site):
    app, client, headers, ids = site
    by_stage = get(client, headers["admin"], "forecast?group=stage&commit_from=50")
    assert [r for r in by_stage if r["stage"] == "Proposal"] == [
        {"stage": "Proposal", "currency": "EUR", "open_deals": 2, "weighted": "3700.00",
         "best_case": "5000.00", "committed": "5000.00", "won": "0.00", "unconverted": []}]
    assert [r for r in by_stage if r["stage"] == "Won"][0]["won"] == "3000.00"
    total = get(client, headers["admin"], "forecast?group=total&close_to=2026-12-31")
    assert total == [{"currency": "EUR", "open_deals": 3, "weighted": "2000.00",
                      "best_case": "3000.00", "committed": "2000.00", "won": "3000.00",
                      "unconverted": [USD_500]}]
    mine = get(client, headers["rep"], "forecast?group=owner")
    assert [(r["owner"], r["weighted"], r["won"]) for r in mine] == [
        (ids["rep"], "2000.00", "3000.00")]  # only the rep's deals a, b and won e


def test_win_rate_by_owner_source_and_month(site):
    app, client, headers, ids = site
    admin = headers["admin"]
    assert get(client, admin, "win_rate") == [
        {"owner": ids["rep"], "won": 1, "lost": 0, "win_rate": 100.0, "currency": "EUR",
         "won_amount": "3000.00", "lost_amount": "0.00", "unconverted": []},
        {"owner": ids["rep2"], "won": 0, "lost": 1, "win_rate": 0.0, "currency": "EUR",
         "won_amount": "0.00", "lost_amount": "700.00", "unconverted": []}]
    by_source = get(client, admin, "win_rate?group=source")
    assert [(r["source"], r["won"], r["lost"], r["win_rate"]) for r in by_source] == [
        ("direct", 0, 1, 0.0), ("web_form", 1, 0, 100.0)]
    by_month = get(client, admin, "win_rate?group=month")
    assert [(r["month"], r["won"], r["lost"], r["win_rate"]) for r in by_month] == [
        ("2026-12", 1, 1, 50.0)]
    later = get(client, admin, "win_rate?since=2026-12-04")
    assert [(r["owner"], r["won"], r["lost"]) for r in later] == [(ids["rep2"], 0, 1)]
    until = get(client, admin, "win_rate?group=total&until=2026-12-03")
    assert [(r["won"], r["lost"], r["win_rate"]) for r in until] == [(1, 0, 100.0)]
    assert [(r["owner"], r["won"]) for r in get(client, headers["rep"], "win_rate")] == [
        (ids["rep"], 1)]


def test_win_rate_by_source_counts_a_deal_with_two_leads_once(site):
    from trellis_sales.models import Lead

    app, client, headers, ids = site
    with app.app_context():  # a second lead converted to the won deal e
        db.session.add(Lead(last_name="M", source="event", status="converted",
                            converted_deal_id=ids["deals"]["e"], owner_id=ids["rep"],
                            created_on=utc(2026, 11, 6)))
        db.session.commit()
    by_source = get(client, headers["admin"], "win_rate?group=source")
    # e counts once, under the first of its leads' sources ("event" < "web_form")
    assert [(r["source"], r["won"], r["lost"], r["won_amount"]) for r in by_source] == [
        ("direct", 0, 1, "0.00"), ("event", 1, 0, "3000.00")]
    total = get(client, headers["admin"], "win_rate?group=total")
    assert [(r["won"], r["lost"], r["won_amount"]) for r in total] == [(1, 1, "3000.00")]


def test_report_parameters_are_validated(site):
    app, client, headers, ids = site
    admin = headers["admin"]

    def bad(path):
        response = client.get(f"/api/v1/sales_report/{path}", headers=admin)
        assert response.status_code == 400, (path, response.status_code)
        return response.get_json()["message"]

    assert bad("forecast?group=planet&commit_from=101") == {
        "group": ["Must be one of: month, owner, stage, total."],
        "commit_from": ["Must be a whole number from 0 to 100."]}
    assert bad("win_rate?since=yesterday") == {"since": ["Not a valid date, e.g. 2026-01-31."]}
    assert bad("win_rate?since=2026-12-05&until=2026-12-01") == {
        "until": ["Must not be before since."]}
    assert bad("funnel?colour=red") == {
        "colour": ["Unknown parameter; use: group, since, until."]}
    assert bad("time_in_stage?as_of=noon&pipeline_id=0") == {
        "pipeline_id": ["Must be a whole number of at least 1."],
        "as_of": ["Not a valid date and time, e.g. 2026-01-31T12:00:00Z."]}
    assert bad("pipeline_velocity?days=x") == {
        "days": ["Must be a whole number from 1 to 3660."]}
    assert bad("quota_attainment?on=31.12.2026") == {
        "on": ["Not a valid date, e.g. 2026-01-31."]}
    assert client.get("/api/v1/sales_report/nope", headers=admin).status_code == 404
    assert client.get("/api/v1/sales_report/forecast").status_code == 401
    listed = client.get("/api/v1/sales_report/", headers=admin).get_json()["result"]
    assert {r["name"] for r in listed} == {
        "forecast", "win_rate", "funnel", "sales_cycle", "time_in_stage", "lost_reasons",
        "pipeline_velocity", "repeat_purchase", "quota_attainment"}


def add_multi_currency(app, ids):
    """USD rates from two days, a GBP rate that starts late, four more closed deals
    and three quotas."""
    from trellis.models import ExchangeRate
    from trellis_sales.models import Quota

    with app.app_context():
        db.session.add_all([
            ExchangeRate(currency="USD", rate=Decimal("0.80"), valid_from=date(2026, 1, 1)),
            ExchangeRate(currency="USD", rate=Decimal("0.90"), valid_from=date(2026, 12, 4)),
            ExchangeRate(currency="GBP", rate=Decimal("1.20"), valid_from=date(2026, 6, 1)),
            Quota(user_id=ids["rep"], period_start=date(2026, 12, 1),
                  period_end=date(2026, 12, 31), amount=Decimal("5000")),
            Quota(user_id=ids["rep2"], period_start=date(2026, 12, 1),
                  period_end=date(2026, 12, 31), amount=Decimal("2000")),
            Quota(user_id=ids["rep"], period_start=date(2026, 5, 1),
                  period_end=date(2026, 5, 31), amount=Decimal("1000")),
        ])
        db.session.commit()
        add_deals(ids, [
            # won 2 Dec: USD at 0.80 → 800; 30 days from creation
            ("g", "Won", "1000", "USD", None, None, "rep", utc(2026, 11, 2, 12),
             utc(2026, 12, 2, 12), None),
            # won 5 Dec: USD at 0.90 (from 4 Dec) → 900; 4 days
            ("h", "Won", "1000", "USD", None, None, "rep2", utc(2026, 12, 1),
             utc(2026, 12, 5), None),
            # won 15 May: no GBP rate before June → unconverted; 5 days
            ("i", "Won", "100", "GBP", None, None, "rep", utc(2026, 5, 10),
             utc(2026, 5, 15), None),
            ("j", "Lost", "200", "USD", None, None, "rep", NOV_1, utc(2026, 12, 6), " Price "),
            ("k", "Lost", "300", "GBP", None, None, "rep2", NOV_1, utc(2026, 3, 1), "Timing"),
        ])


def test_multi_currency_reports_convert_at_the_rate_of_the_day(site):
    app, client, headers, ids = site
    add_multi_currency(app, ids)
    admin = headers["admin"]
    none = []
    assert get(client, admin, "forecast?as_of=2026-12-31") == [
        {"month": "2026-05", "currency": "EUR", "open_deals": 0, "weighted": "0.00",
         "best_case": "0.00", "committed": "0.00", "won": "0.00",
         "unconverted": [{"currency": "GBP", "deals": 1, "weighted": "0.00",
                          "best_case": "0.00", "committed": "0.00", "won": "100.00"}]},
        # open c: 500 USD at the 31 Dec rate 0.90 = 450 (weighted 10% = 45);
        # won e 3000 + g 800 + h 900 = 4700
        {"month": "2026-12", "currency": "EUR", "open_deals": 3, "weighted": "2045.00",
         "best_case": "3450.00", "committed": "2000.00", "won": "4700.00", "unconverted": none},
        {"month": "2027-01", "currency": "EUR", "open_deals": 1, "weighted": "3200.00",
         "best_case": "4000.00", "committed": "4000.00", "won": "0.00", "unconverted": none},
    ]
    # before 4 Dec, the open USD deal converts at 0.80
    early = get(client, admin, "forecast?group=total&as_of=2026-12-03&close_to=2026-12-31")
    assert early[0]["best_case"] == "3400.00" and early[0]["weighted"] == "2040.00"

    assert get(client, admin, "win_rate") == [
        # rep: won e 3000, g 800 and i (100 GBP, no rate); lost j 200 USD × 0.90 = 180
        {"owner": ids["rep"], "won": 3, "lost": 1, "win_rate": 75.0, "currency": "EUR",
         "won_amount": "3800.00", "lost_amount": "180.00",
         "unconverted": [{"currency": "GBP", "deals": 1, "won_amount": "100.00",
                          "lost_amount": "0.00"}]},
        # rep2: won h 900; lost f 700 and k (300 GBP in March, no rate)
        {"owner": ids["rep2"], "won": 1, "lost": 2, "win_rate": 33.3, "currency": "EUR",
         "won_amount": "900.00", "lost_amount": "700.00",
         "unconverted": [{"currency": "GBP", "deals": 1, "won_amount": "0.00",
                          "lost_amount": "300.00"}]},
    ]

    assert get(client, admin, "lost_reasons") == [
        {"reason": "Price", "deals": 2, "currency": "EUR", "amount": "880.00",
         "unconverted": none},  # f 700 + j 180 (" Price " trimmed)
        {"reason": "Timing", "deals": 1, "currency": "EUR", "amount": "0.00",
         "unconverted": [{"currency": "GBP", "deals": 1, "amount": "300.00"}]},
    ]
    assert get(client, headers["rep"], "lost_reasons") == [
        {"reason": "Price", "deals": 1, "currency": "EUR", "amount": "180.00",
         "unconverted": none}]

    quotas = get(client, admin, "quota_attainment")
    assert [(q["user"], q["period_start"], q["quota"], q["won"], q["won_deals"],
             q["attainment"], q["unconverted"]) for q in quotas] == [
        # May: i is 100 GBP with no rate yet: nothing converted, listed instead
        ("rep", "2026-05-01", "1000.00", "0.00", 1, 0.0,
         [{"currency": "GBP", "won_deals": 1, "won": "100.00"}]),
        ("rep", "2026-12-01", "5000.00", "3800.00", 2, 76.0, none),  # e 3000 + g 800
        ("rep2", "2026-12-01", "2000.00", "900.00", 1, 45.0, none),  # h 900
    ]
    assert [q["user"] for q in get(client, admin, "quota_attainment?on=2026-12-15")] == [
        "rep", "rep2"]
    mine = get(client, headers["rep"], "quota_attainment")
    assert [(q["period_start"], q["attainment"]) for q in mine] == [
        ("2026-05-01", 0.0), ("2026-12-01", 76.0)]

    # sales cycle: e 10 days, g 30, i 5 (rep); h 4 (rep2)
    assert get(client, admin, "sales_cycle") == [
        {"owner": ids["rep"], "won_deals": 3, "avg_days": 15.0, "min_days": 5.0,
         "max_days": 30.0},
        {"owner": ids["rep2"], "won_deals": 1, "avg_days": 4.0, "min_days": 4.0,
         "max_days": 4.0}]
    assert get(client, admin, "sales_cycle?group=month") == [
        {"month": "2026-05", "won_deals": 1, "avg_days": 5.0, "min_days": 5.0, "max_days": 5.0},
        {"month": "2026-12", "won_deals": 3, "avg_days": 14.7, "min_days": 4.0,
         "max_days": 30.0}]  # (10 + 30 + 4) / 3
    assert get(client, headers["rep"], "sales_cycle?group=total&since=2026-12-01") == [
        {"won_deals": 2, "avg_days": 20.0, "min_days": 10.0, "max_days": 30.0}]

    # velocity over 2026: open a, b, c, d = 4; won e, g, h, i; lost f, j, k;
    # avg won (converted) (3000 + 800 + 900) / 3; cycle (10 + 30 + 4 + 5) / 4 = 12.25
    total = get(client, admin, "pipeline_velocity?as_of=2026-12-31")
    velocity = 4 * (Decimal(4700) / 3) * Decimal(4) / 7 / Decimal("12.25")
    assert total == [{"open_deals": 4, "won": 4, "lost": 3, "win_rate": 57.1,
                      "currency": "EUR", "avg_won_amount": "1566.67", "avg_cycle_days": 12.25,
                      "velocity_per_day": f"{velocity:.2f}",
                      "window": {"from": "2026-01-01", "to": "2026-12-31"},
                      "unconverted": [{"currency": "GBP", "won_deals": 1,
                                       "won_amount": "100.00"}]}]
    assert f"{velocity:.2f}" == "292.32"
    by_owner = get(client, admin, "pipeline_velocity?as_of=2026-12-31&group=owner")
    # rep: 2 open × 1900 avg × 75% ÷ 15 days = 190; rep2: 2 × 900 × 1/3 ÷ 4 = 150
    assert [(r["owner"], r["open_deals"], r["avg_won_amount"], r["win_rate"],
             r["avg_cycle_days"], r["velocity_per_day"]) for r in by_owner] == [
        (ids["rep"], 2, "1900.00", 75.0, 15.0, "190.00"),
        (ids["rep2"], 2, "900.00", 33.3, 4.0, "150.00")]
    # a 30-day window ending 31 Dec: won e, g, h (Dec), lost f, j
    short = get(client, admin, "pipeline_velocity?as_of=2026-12-31&days=30")[0]
    assert (short["won"], short["lost"], short["unconverted"]) == (3, 2, [])


def test_funnel_by_month_source_and_for_a_rep(site):
    from trellis_sales.models import Lead

    app, client, headers, ids = site
    deals = ids["deals"]
    with app.app_context():
        for name, source, status, deal, created, owner in [
            ("L2", "web_form", "new", None, utc(2026, 11, 10), "rep"),
            ("L3", "web_form", "qualified", None, utc(2026, 12, 1), "rep"),
            ("L4", "referral", "converted", deals["a"], utc(2026, 12, 2), "rep"),  # open deal
            ("L5", "referral", "disqualified", None, utc(2026, 12, 3), "rep"),
            ("L6", "referral", "converted", deals["f"], utc(2026, 12, 4), "rep2"),  # lost
        ]:
            db.session.add(Lead(last_name=name, source=source, status=status,
                                converted_deal_id=deal, created_on=created,
                                owner_id=ids[owner]))
        db.session.commit()
    statuses = dict.fromkeys(["new", "contacted", "qualified", "disqualified", "converted"], 0)
    assert get(client, headers["admin"], "funnel") == [
        # the seed's lead L (converted, deal e won) and L2
        {"month": "2026-11", "leads": 2, "by_status": {**statuses, "new": 1, "converted": 1},
         "converted": 1, "deals": 1, "won": 1, "lead_to_deal": 50.0, "deal_to_won": 100.0,
         "lead_to_won": 50.0},
        {"month": "2026-12", "leads": 4,
         "by_status": {**statuses, "qualified": 1, "disqualified": 1, "converted": 2},
         "converted": 2, "deals": 2, "won": 0, "lead_to_deal": 50.0, "deal_to_won": 0.0,
         "lead_to_won": 0.0},
    ]
    by_source = get(client, headers["admin"], "funnel?group=source")
    assert [(r["source"], r["leads"], r["deals"], r["won"], r["lead_to_deal"],
             r["deal_to_won"], r["lead_to_won"]) for r in by_source] == [
        ("referral", 3, 2, 0, 66.7, 0.0, 0.0), ("web_form", 3, 1, 1, 33.3, 100.0, 33.3)]
    mine = get(client, headers["rep"], "funnel?group=total")  # L, L2..L5, not L6
    assert [(r["leads"], r["converted"], r["won"], r["lead_to_deal"], r["deal_to_won"],
             r["lead_to_won"]) for r in mine] == [(5, 2, 1, 40.0, 50.0, 20.0)]
    december = get(client, headers["admin"], "funnel?group=total&since=2026-12-02")
    assert [(r["leads"], r["deals"]) for r in december] == [(3, 2)]


def test_time_in_stage_counts_open_stints_up_to_as_of(site):
    from trellis_sales.models import DealStageHistory

    app, client, headers, ids = site
    d = ids["deals"]
    with app.app_context():
        stage = _stages()
        db.session.execute(delete(DealStageHistory))
        for deal, name, entered, left in [
            ("a", "Qualification", utc(2026, 11, 1), utc(2026, 11, 3)),    # 2 days
            ("a", "Proposal", utc(2026, 11, 3), None),                     # open: 8 days
            ("b", "Qualification", utc(2026, 11, 1), utc(2026, 11, 2)),    # 1 day
            ("b", "Proposal", utc(2026, 11, 2), utc(2026, 11, 5)),         # 3 days
            ("b", "Negotiation", utc(2026, 11, 5), None),                  # open: 6 days
            ("d", "Proposal", utc(2026, 11, 10), None),                    # open: 1 day
            ("e", "Won", utc(2026, 11, 1), None),                          # closed: left out
            ("c", "Qualification", utc(2026, 11, 12), None),               # after as_of
        ]:
            db.session.add(DealStageHistory(deal_id=d[deal], stage_id=stage[name].id,
                                            entered_at=entered, left_at=left))
        db.session.commit()
        pipeline = stage["Proposal"].pipeline_id
    rows = get(client, headers["admin"], "time_in_stage?as_of=2026-11-11T00:00:00Z")
    assert [(r["stage"], r["stints"], r["open_stints"], r["avg_days"], r["avg_hours"])
            for r in rows] == [
        ("Qualification", 2, 0, 1.5, 36.0),
        ("Proposal", 3, 2, 4.0, 96.0),      # (8 + 3 + 1) / 3
        ("Negotiation", 1, 1, 6.0, 144.0)]
    assert all(r["pipeline_id"] == pipeline for r in rows)
    mine = get(client, headers["rep"], "time_in_stage?as_of=2026-11-11T00:00:00Z")
    assert [(r["stage"], r["stints"], r["avg_days"]) for r in mine] == [
        ("Qualification", 2, 1.5), ("Proposal", 2, 5.5), ("Negotiation", 1, 6.0)]
    # as of 4 Nov, b's Proposal stint (left 5 Nov) counts up to then: 2 days
    early = get(client, headers["admin"], "time_in_stage?as_of=2026-11-04T00:00:00Z")
    assert [(r["stage"], r["stints"], r["open_stints"], r["avg_days"]) for r in early] == [
        ("Qualification", 2, 0, 1.5), ("Proposal", 2, 2, 1.5)]  # a 1 day, b 2 days
    assert get(client, headers["admin"], f"time_in_stage?pipeline_id={pipeline + 1}") == []


def test_repeat_purchase_rate_per_period(site):
    from trellis.models import Account, Contact
    from trellis_sales.models import Order

    app, client, headers, ids = site
    with app.app_context():
        a1, a2 = Account(name="A1"), Account(name="A2")
        c1, c2, c3 = (Contact(first_name="C", last_name=n) for n in ("1", "2", "3"))
        c2.account, c3.account = a2, a1
        db.session.add_all([a1, a2, c1, c2, c3])
        db.session.flush()
        for kw, at, owner in [
            ({"account_id": a1.id}, utc(2026, 1, 10), "rep"),
            ({"account_id": a1.id}, utc(2026, 1, 20), "rep"),
            ({"account_id": a1.id}, utc(2026, 3, 5), "rep"),
            ({"contact_id": c1.id}, utc(2026, 1, 15), "rep"),
            ({"contact_id": c1.id}, utc(2027, 2, 1), "rep"),
            ({"contact_id": c2.id, "account_id": a2.id}, utc(2026, 3, 10), "rep"),  # A2
            ({"contact_id": c3.id, "account_id": a1.id}, utc(2026, 3, 20), "rep2"),  # A1
        ]:
            db.session.add(Order(ordered_at=at, owner_id=ids[owner], total=Decimal("10"),
                                 **kw))
        db.session.commit()
    admin = headers["admin"]
    # 2026: A1 (4 orders), C1 (1), A2 (1) → 1 of 3 repeat; 2027: C1 once
    assert get(client, admin, "repeat_purchase") == [
        {"year": "2026", "customers": 3, "repeat_customers": 1, "orders": 6,
         "repeat_rate": 33.3},
        {"year": "2027", "customers": 1, "repeat_customers": 0, "orders": 1, "repeat_rate": 0.0}]
    assert [(r["month"], r["customers"], r["repeat_customers"], r["repeat_rate"])
            for r in get(client, admin, "repeat_purchase?group=month")] == [
        ("2026-01", 2, 1, 50.0), ("2026-03", 2, 1, 50.0), ("2027-02", 1, 0, 0.0)]
    assert get(client, admin, "repeat_purchase?group=total") == [
        {"customers": 3, "repeat_customers": 2, "orders": 7, "repeat_rate": 66.7}]
    # the rep does not see rep2's order, so A1 has one order in March, not two
    assert [(r["month"], r["customers"], r["repeat_customers"])
            for r in get(client, headers["rep"], "repeat_purchase?group=month")] == [
        ("2026-01", 2, 1), ("2026-03", 2, 0), ("2027-02", 1, 0)]


# ------------------------------------------------------------------ quotas


def test_quota_api_managers_manage_their_team_and_reps_read_their_own(site, make_user,
                                                                      api_login):
    from trellis.models import Team
    from trellis_sales.models import Quota

    app, client, headers, ids = site
    boss = make_user(app, "boss", ["Sales Manager"])
    outsider = make_user(app, "outsider", ["Sales Rep"])
    with app.app_context():
        sm = app.appbuilder.sm
        db.session.add(Team(name="East", manager_id=boss,
                            members=[sm.get_user_by_id(ids["rep"])]))
        db.session.add(Quota(user_id=ids["rep2"], period_start=date(2026, 1, 1),
                             period_end=date(2026, 3, 31), amount=Decimal("100")))
        db.session.commit()
    manager = api_login(client, "boss", "pw-123456")
    body = {"user_id": ids["rep"], "period_start": "2026-01-01", "period_end": "2026-03-31",
            "amount": 9000}
    created = client.post("/api/v1/quota/", headers=manager, json=body)
    assert created.status_code == 201, created.get_json()
    overlap = client.post("/api/v1/quota/", headers=manager,
                          json={**body, "period_start": "2026-03-01", "period_end": "2026-04-30"})
    assert overlap.status_code == 400
    assert overlap.get_json()["message"] == {
        "period_start": ["Overlaps this rep's quota 2026-01-01 to 2026-03-31."]}
    wrong = client.post("/api/v1/quota/", headers=manager, json={
        "user_id": ids["rep"], "period_start": "2026-05-01", "period_end": "2026-04-01",
        "amount": -1})
    assert wrong.status_code == 400
    assert wrong.get_json()["message"] == {"amount": ["Must be greater than 0."]}
    wrong = client.post("/api/v1/quota/", headers=manager, json={
        "user_id": ids["rep"], "period_start": "2026-05-01", "period_end": "2026-04-01",
        "amount": 5})
    assert wrong.get_json()["message"] == {"period_end": ["Must not be before the period start."]}
    foreign = client.post("/api/v1/quota/", headers=manager, json={**body, "user_id": outsider})
    assert foreign.status_code == 400
    assert foreign.get_json()["message"] == {
        "user_id": ["You can only assign records to members of your teams."]}
    bad = client.post("/api/v1/quota/", headers=manager, json={"user_id": ids["rep"],
                                                               "period_start": "soon"})
    assert bad.status_code == 400
    assert set(bad.get_json()["message"]) == {"period_start", "period_end", "amount"}
    # the manager sees the team's quotas only; the rep reads theirs and cannot write
    assert [q["user_id"] for q in client.get("/api/v1/quota/", headers=manager)
            .get_json()["result"]] == [ids["rep"]]
    rep = headers["rep"]
    assert [q["amount"] for q in client.get("/api/v1/quota/", headers=rep)
            .get_json()["result"]] == ["9000.00"]
    assert client.post("/api/v1/quota/", headers=rep, json=body).status_code == 403
    assert client.put(f"/api/v1/quota/{created.get_json()['id']}", headers=rep,
                      json={"amount": 1}).status_code == 403


# ------------------------------------------------------------------ dashboard


def test_dashboard_shows_a_rep_only_their_figures(site, web_login):
    from trellis.db import db as _db
    from trellis_sales.models import Quota

    app, client, headers, ids = site
    today = datetime.now(timezone.utc).date()
    with app.app_context():
        for user in ("rep", "rep2"):
            _db.session.add(Quota(user_id=ids[user], period_start=today - timedelta(days=3),
                                  period_end=today + timedelta(days=3), amount=Decimal("100")))
        _db.session.commit()
    widgets = {w["name"]: w for w in client.get("/api/v1/dashboard/?all=1",
                                                headers=headers["rep"]).get_json()["result"]}
    assert {"sales.forecast_quarter", "sales.win_rate", "sales.pipeline_by_stage",
            "sales.quota_attainment", "sales.lost_reasons", "sales.won_by_rep"} <= set(widgets)
    bars = widgets["sales.pipeline_by_stage"]["data"]["bars"]
    assert [(b["label"], b["display"]) for b in bars] == [("Negotiation (1)", "2,000.00"),
                                                          ("Proposal (1)", "1,000.00")]
    assert [row[0] for row in widgets["sales.quota_attainment"]["data"]["rows"]] == ["rep"]
    everyone = {w["name"]: w for w in client.get("/api/v1/dashboard/?all=1",
                                                 headers=headers["admin"])
                .get_json()["result"]}
    assert [row[0] for row in everyone["sales.quota_attainment"]["data"]["rows"]] == [
        "rep", "rep2"]
    assert ("Proposal (2)", "5,000.00") in [
        (b["label"], b["display"]) for b in everyone["sales.pipeline_by_stage"]["data"]["bars"]]

    web = app.test_client()
    web_login(web, "rep", "pw-123456")
    # the rep's own arrangement: the team views too
    assert client.put("/api/v1/dashboard/layout", headers=headers["rep"], json={"widgets": [
        "sales.pipeline_by_stage", "sales.quota_attainment"]}).status_code == 200
    page = web.get("/dashboard/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Pipeline by stage" in html and "Quota attainment" in html
    assert "Proposal (1)" in html and "1,000.00" in html and "2,000.00" in html
    assert "Proposal (2)" not in html and "5,000.00" not in html and "rep2" not in html
    assert "<script src=\"http" not in html and "cdn" not in html.lower()
    assert 'href="/dashboard/"' in web.get("/").get_data(as_text=True)
