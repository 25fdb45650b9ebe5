"""Lead scoring: profile fit + decaying behaviour, the threshold event and the
sales plugin qualifying the lead."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import select

from trellis.db import db, utcnow
from trellis.events import emit
from trellis.settings import update_settings
from trellis_scoring.leads import decayed
from trellis_scoring.models import LeadScore


def test_decay_halves_every_half_life():
    assert decayed(np.array([40, 40, 8, 10]), np.array([30, 60, 0, -5]), 30).tolist() == [
        20.0, 10.0, 8.0, 10.0]


def test_lead_scores_qualify_the_lead_once(trellis_app_factory, api_login, event_capture):
    from trellis_sales.models import Lead

    app = trellis_app_factory(plugins=["sales", "scoring"],
                              extra_plugins=[("capture", event_capture)])
    client = app.test_client()
    headers = api_login(client)
    with app.app_context():
        update_settings("scoring", {"lead_qualify_from": 51, "lead_half_life_days": 30})
        one = Lead(first_name="Ann", last_name="One", industry="Software",
                   title="Chief Executive", company="One Ltd")
        two = Lead(first_name="Bob", last_name="Two", industry="Retail", title="Head of IT",
                   company="Two Ltd")
        db.session.add_all([one, two])
        db.session.commit()
        ids = {"one": one.id, "two": two.id}

    def score(name):
        with app.app_context():
            db.session.remove()
            row = db.session.get(LeadScore, ids[name])
            return None if row is None else row.score

    # created: profile only (software 15 + *chief* 15; *head* 10)
    assert (score("one"), score("two")) == (30.0, 10.0)
    month_ago = (utcnow() - timedelta(days=30)).isoformat()
    ok = client.post("/api/v1/scoring/lead_signal", headers=headers,
                     json={"lead_id": ids["one"], "kind": "demo.requested",
                           "occurred_at": month_ago})
    assert ok.status_code == 201, ok.get_json()
    assert score("one") == 50.0  # 30 + 40 · 0.5: below 51
    assert "scoring.lead_qualified" not in event_capture.names()
    client.post("/api/v1/scoring/lead_signal", headers=headers,
                json={"lead_id": ids["one"], "kind": "email.opened"})
    assert score("one") == 52.0  # + 2, fresh
    assert event_capture.names().count("scoring.lead_qualified") == 1
    with app.app_context():
        lead = db.session.get(Lead, ids["one"])
        assert (lead.status, float(lead.score)) == ("qualified", 52.0)
    body = client.get(f"/api/v1/lead_score/{ids['one']}", headers=headers).get_json()
    assert (body["profile_points"], body["behaviour_points"]) == (30.0, 22.0)
    assert body["qualified_at"] is not None
    # more signals: no second event
    client.post("/api/v1/scoring/lead_signal", headers=headers,
                json={"lead_id": ids["one"], "kind": "form.submitted"})
    assert event_capture.names().count("scoring.lead_qualified") == 1
    # a behaviour event from any plugin, carrying lead_id, counts as a signal
    with app.app_context():
        emit("demo.requested", {"lead_id": ids["two"]}, plugin="capture")
    assert score("two") == 50.0  # 10 + 40
    with app.app_context():
        assert db.session.get(Lead, ids["two"]).status == "new"
    # bad input names the field
    bad = client.post("/api/v1/scoring/lead_signal", headers=headers, json={"lead_id": "x"})
    assert bad.status_code == 400 and set(bad.get_json()["message"]) == {"lead_id", "kind"}
    bad = client.post("/api/v1/scoring/lead_signal", headers=headers,
                      json={"lead_id": 99999, "kind": "email.opened"})
    assert bad.get_json()["message"] == {"lead_id": ["No lead with id 99999."]}
    bad = client.post("/api/v1/lead_rule/", headers=headers,
                      json={"kind": "profile", "field": "shoe_size", "value": "42",
                            "points": 5})
    assert bad.status_code == 400 and set(bad.get_json()["message"]) == {"field"}
    # the full job rescores everyone: decay moves scores as time passes
    with app.app_context():
        from trellis.jobs import execute

        assert execute("scoring.lead_scores", {}) == {"leads": 2, "qualified": 0}
