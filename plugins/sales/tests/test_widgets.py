"""The sales dashboard widgets named by the dashboards issue (pipeline by stage,
forecast vs won, win rate, overdue follow-ups) and the default dashboard of each
sales role; figures hand-computed from data relative to today, under the rep's
record rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from trellis.db import db
from trellis.models import Contact

PW = "pw-123456"
REP_DEFAULT = ["sales.pipeline_by_stage", "sales.forecast_vs_won", "sales.win_rate",
               "sales.overdue_tasks"]
MANAGER_EXTRA = ["sales.forecast_quarter", "sales.won_by_rep", "sales.quota_attainment",
                 "sales.lost_reasons"]


def _month(today: date, shift: int) -> str:
    index = today.year * 12 + today.month - 1 + shift
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@pytest.fixture
def site(trellis_app_factory, make_user, api_login):
    from trellis_sales.models import Deal, Stage, Task

    app = trellis_app_factory(plugins=["sales"])
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"]),
           "boss": make_user(app, "boss", ["Sales Manager"]),
           "manager": make_user(app, "manager", ["Manager"])}
    now = datetime.now(timezone.utc)
    today = now.date()
    with app.app_context():
        stage = {s.name: s for s in db.session.scalars(select(Stage))}
        ana = Contact(first_name="Ana", last_name="L", owner_id=ids["rep"])
        db.session.add(ana)

        def deal(name, st, amount, owner, close=None, closed=None):
            d = Deal(name=name, stage=stage[st], pipeline_id=stage[st].pipeline_id,
                     amount=Decimal(amount), owner_id=ids[owner], expected_close=close,
                     lost_reason="Price" if st == "Lost" else None)
            db.session.add(d)
            return d, st, closed

        this_month = date(today.year, today.month, 15)
        prev = today.replace(day=1) - timedelta(days=1)
        deals = [
            deal("A", "Proposal", "1000", "rep", close=this_month),  # 50 %: weighted 500
            deal("B", "Won", "3000", "rep", closed=datetime(today.year, today.month, 1,
                                                            tzinfo=timezone.utc)),
            deal("C", "Won", "700", "rep", closed=datetime(prev.year, prev.month, 10,
                                                           tzinfo=timezone.utc)),
            deal("D", "Negotiation", "2000", "rep2", close=this_month),  # not the rep's
            deal("E", "Lost", "100", "rep", closed=now - timedelta(days=10)),
            deal("F", "Won", "100", "rep", closed=now - timedelta(days=120)),
            deal("G", "Lost", "100", "rep", closed=now - timedelta(days=100)),
            deal("H", "Lost", "100", "rep", closed=now - timedelta(days=150)),
        ]
        db.session.flush()
        for d, st, closed in deals:  # the rules stamped "now": use known moments
            if st == "Won":
                d.won_at = closed
            if st == "Lost":
                d.lost_at = closed

        def task(subject, owner, due, done=None):
            db.session.add(Task(subject=subject, kind="call", owner_id=ids[owner],
                                contact=ana, due_at=now + due, done_at=done and now + done))

        task("T1 overdue now", "rep", -timedelta(hours=1))
        task("T7 overdue now", "rep", -timedelta(hours=3))
        task("T2 overdue then and now", "rep", -timedelta(days=10))
        task("T3 overdue then, done since", "rep", -timedelta(days=10), -timedelta(days=1))
        task("T4 done before a week ago", "rep", -timedelta(days=10), -timedelta(days=8))
        task("T5 not due", "rep", timedelta(days=1))
        task("T6 someone else's", "rep2", -timedelta(days=1))
        db.session.commit()
    client = app.test_client()
    headers = {name: api_login(client, name, PW) for name in ("rep", "boss", "manager")}
    return app, client, headers, today


def board(client, headers, everything=False):
    response = client.get("/api/v1/dashboard/" + ("?all=1" if everything else ""),
                          headers=headers)
    assert response.status_code == 200, response.get_json()
    return {w["name"]: w for w in response.get_json()["result"]}


def test_each_sales_role_has_its_default_dashboard(site):
    app, client, headers, today = site
    assert list(board(client, headers["rep"])) == REP_DEFAULT
    assert list(board(client, headers["boss"])) == REP_DEFAULT + MANAGER_EXTRA
    manager = list(board(client, headers["manager"]))  # the core's Manager: the lot
    assert manager[:8] == REP_DEFAULT + MANAGER_EXTRA
    assert {"core.new_contacts", "core.activity_mix"} <= set(manager)


def test_the_reps_widgets_count_only_the_reps_records(site):
    app, client, headers, today = site
    widgets = board(client, headers["rep"])
    assert {w["kind"] for w in widgets.values()} == {"bars", "kpi"}
    # pipeline by stage: only A (the rep's open deal)
    pipeline = widgets["sales.pipeline_by_stage"]["data"]
    assert [(b["label"], b["display"]) for b in pipeline["bars"]] == [("Proposal (1)",
                                                                       "1,000.00")]
    assert pipeline["x_label"] and pipeline["y_label"] == "EUR"

    forecast = widgets["sales.forecast_vs_won"]["data"]
    assert forecast["labels"] == [_month(today, s) for s in range(-3, 3)]
    series = {s["label"]: s["values"] for s in forecast["series"]}
    assert series["Forecast (weighted)"] == [0, 0, 0, 500.0, 0, 0]  # A: 1000 × 50 %
    assert series["Best case"] == [0, 0, 0, 1000.0, 0, 0]
    assert series["Won"] == [0, 0, 700.0, 3000.0, 0, 0]  # C last month, B this month

    # win rate: last 90 days B, C won, E lost → 66.7 %; the 90 before: F won, G, H lost
    win = widgets["sales.win_rate"]["data"]
    assert (win["value"], win["won"], win["lost"]) == ("66.7 %", 2, 1)
    assert win["previous"] == 33.3 and win["trend"]["direction"] == "up"
    assert win["trend"]["good"] is True

    # overdue: T1, T7, T2 now; a week ago T2, T3 were → up, which is bad
    overdue = widgets["sales.overdue_tasks"]["data"]
    assert (overdue["value"], overdue["previous"]) == ("3", 2)
    assert overdue["trend"] == {"direction": "up", "change": 1, "change_pct": 50.0,
                                "good": False, "previous_label": "a week ago"}

    boss = board(client, headers["boss"])  # no team: the manager sees only their own
    assert boss["sales.overdue_tasks"]["data"]["value"] == "0"
    manager = board(client, headers["manager"])  # scope all
    assert manager["sales.overdue_tasks"]["data"]["value"] == "4"
    assert [(b["label"], b["display"]) for b in
            manager["sales.pipeline_by_stage"]["data"]["bars"]] == [
        ("Negotiation (1)", "2,000.00"), ("Proposal (1)", "1,000.00")]


def test_sales_widgets_go_with_the_plugin(site):
    from trellis import lifecycle

    app, client, headers, today = site
    with app.app_context():
        lifecycle.disable(app.extensions["trellis"], "sales")
    assert not [n for n in board(client, headers["manager"], everything=True)
                if n.startswith("sales.")]
