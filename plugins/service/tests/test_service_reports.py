"""Service reports against hand-computed figures.

The default calendar (Mon–Fri 09:00–17:00 UTC); normal priority 4 h / 16 h.
Five tickets opened Monday 22 December 2025 at 09:00:

| ticket | channel, category | first reply (business h) | resolved (business h) | SLA |
|---|---|---|---|---|
| A | email, Hardware | Mon 10:00 (1) | Mon 17:00 (8)  | met |
| B | email, Hardware | Mon 11:00 (2) | Tue 10:00 (9)  | met |
| C | phone | Mon 12:00 (3) | Tue 17:00 (16, exactly on time) | met |
| D | api | Mon 13:00 (4, exactly on time) | open | breached (resolution) |
| E | api | Tue 11:00 (10) | open | breached (first response) |

and F (web form) opened now, unanswered (on track).

First response: 1, 2, 3, 4, 10 → median 3, p90 at rank 1 + 0.9·4 = 4.6 →
4 + 0.6·(10 − 4) = 7.6.  Resolution: 8, 9, 16 → median 9, p90 at rank 2.8 →
9 + 0.8·(16 − 9) = 14.6.  SLA compliance 3 / (3 + 2) = 60 %.
"""

from __future__ import annotations

from datetime import datetime, timezone

from trellis.db import db

from service_testkit import site  # noqa: F401

UTC = timezone.utc


def at(day, hour):
    return datetime(2025, 12, day, hour, tzinfo=UTC)


def _build(app, monkeypatch, ids):
    import trellis_service.sla as sla
    from trellis_service.models import Category, SlaPolicy, Ticket, TicketMessage

    plan = {"A": ("email", True, at(22, 10), at(22, 17)),
            "B": ("email", True, at(22, 11), at(23, 10)),
            "C": ("phone", False, at(22, 12), at(23, 17)),
            "D": ("api", False, at(22, 13), None),
            "E": ("api", False, at(23, 11), None)}
    with app.app_context():
        db.session.add(SlaPolicy(priority="normal", first_response_hours=4, resolution_hours=16))
        db.session.commit()
        hardware = Category(name="Hardware")
        db.session.add(hardware)
        tickets = {}
        for name, (channel, hw, _, _) in plan.items():
            tickets[name] = Ticket(subject=name, channel=channel, created_on=at(22, 9),
                                   category=hardware if hw else None,
                                   team_id=ids["support"], assignee_id=ids["ann"])
        db.session.add_all(tickets.values())
        db.session.add(Ticket(subject="F", channel="web_form", team_id=ids["support"],
                              assignee_id=ids["ann"]))
        db.session.commit()
        for name, (_, _, replied, resolved) in plan.items():
            db.session.add(TicketMessage(ticket=tickets[name], kind="reply", body="Hi",
                                         created_on=replied))
            db.session.commit()
            when = resolved or replied
            monkeypatch.setattr(sla, "utcnow", lambda when=when: when)
            tickets[name].status = "resolved" if resolved else "open"
            db.session.commit()
            monkeypatch.undo()


def test_reports_match_hand_computed_figures(site, monkeypatch):
    app, client, headers, ids, _ = site
    _build(app, monkeypatch, ids)
    boss = headers["boss"]

    def report(name, **params):
        response = client.get(f"/api/v1/service_report/{name}", headers=boss,
                              query_string=params)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    times = report("response_times")
    assert times["first_response"] == {"count": 5, "p50": 3.0, "p90": 7.6}
    assert times["resolution"] == {"count": 3, "p50": 9.0, "p90": 14.6}
    assert report("response_times", since="2025-12-23")["first_response"] == {
        "count": 0, "p50": None, "p90": None}

    compliance = report("sla_compliance")
    assert compliance["counts"] == {"met": 3, "on_track": 1, "at_risk": 0, "paused": 0,
                                    "breached": 2}
    assert compliance["compliance_pct"] == 60.0

    assert report("backlog") == {"by_status": {"new": 1, "open": 2, "pending": 0},
                                 "by_age": {"<1d": 1, "1-3d": 0, "3-7d": 0, ">7d": 2},
                                 "total": 3}
    assert report("volume") == {"by_channel": {"api": 2, "email": 2, "phone": 1, "web_form": 1},
                                "by_category": {"(none)": 4, "Hardware": 2}, "total": 6}
    # record rules: dan (Billing) sees none of Support's tickets
    dan = client.get("/api/v1/service_report/volume", headers=headers["dan"]).get_json()
    assert dan["total"] == 0
    bad = client.get("/api/v1/service_report/volume", headers=boss,
                     query_string={"since": "last week"})
    assert bad.status_code == 400 and list(bad.get_json()["message"]) == ["since"]
    assert client.get("/api/v1/service_report/nonsense", headers=boss).status_code == 404


def test_dashboard_widgets(site, monkeypatch):
    app, client, headers, ids, _ = site
    _build(app, monkeypatch, ids)

    def widget(name):
        response = client.get(f"/api/v1/dashboard/widget/service.{name}",
                              headers=headers["boss"])
        assert response.status_code == 200, response.get_json()
        return response.get_json()["result"]["data"]

    assert widget("sla_compliance")["value"] == "60.0"
    assert [(b["label"], b["value"]) for b in widget("backlog")["bars"]] == [
        ("new", 1), ("open", 2), ("pending", 0)]
    assert {s["label"]: s["value"] for s in widget("volume_by_channel")["slices"]} == {
        "api": 2, "email": 2, "phone": 1, "web_form": 1}
    assert widget("csat")["value"] == "–"
