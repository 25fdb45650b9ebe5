"""Ticket SLAs in business hours: due times across nights, weekends and holidays,
the pause while pending, and the breach job (in-process, on PostgreSQL under a
real rq worker).

The calendar: Europe/Berlin, Mon–Fri 09:00–17:00 local (08:00–16:00 UTC in
December), holidays 25 and 26 December 2025.  Policies: normal 4 h first
response / 16 h resolution, urgent 1 h / 4 h.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from trellis import jobs
from trellis.db import db
from trellis.models import BusinessCalendar, Holiday, Notification

from service_testkit import setup_site, site  # noqa: F401

UTC = timezone.utc


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def _utc(value):
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _configure(app):
    from trellis_service.models import SlaPolicy

    with app.app_context():
        db.session.add(BusinessCalendar(
            name="Berlin", timezone="Europe/Berlin", work_days="1,2,3,4,5", day_start="09:00",
            day_end="17:00", is_default=True,
            holidays=[Holiday(day=date(2025, 12, 25), name="Christmas"),
                      Holiday(day=date(2025, 12, 26), name="Boxing Day")]))
        db.session.add_all([SlaPolicy(priority="normal", first_response_hours=4,
                                      resolution_hours=16),
                            SlaPolicy(priority="urgent", first_response_hours=1,
                                      resolution_hours=4)])
        db.session.commit()


def _ticket(app, created, **values):
    from trellis_service.models import Ticket

    with app.app_context():
        ticket = Ticket(subject=values.pop("subject", "Help"), created_on=created, **values)
        db.session.add(ticket)
        db.session.commit()
        return ticket.id


def _load(app, ticket_id):
    from trellis_service.models import Ticket

    with app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        db.session.expunge(ticket)
        return ticket


def _set_status(app, monkeypatch, ticket_id, status, when):
    import trellis_service.sla as sla
    from trellis_service.models import Ticket

    monkeypatch.setattr(sla, "utcnow", lambda: when)
    with app.app_context():
        db.session.get(Ticket, ticket_id).status = status
        db.session.commit()
    monkeypatch.undo()


def _reply(app, ticket_id, when):
    from trellis_service.models import TicketMessage

    with app.app_context():
        db.session.add(TicketMessage(ticket_id=ticket_id, kind="reply", body="On it",
                                     created_on=when))
        db.session.commit()


@pytest.fixture
def sla_site(site):
    _configure(site[0])
    return site


def test_due_times_across_night_weekend_and_holidays(sla_site):
    app = sla_site[0]
    # Monday 16:00 Berlin: 1 h that evening, the rest from Tuesday morning
    night = _load(app, _ticket(app, at(22, 15)))
    assert _utc(night.first_response_due_at) == at(23, 11)  # Tue 12:00 Berlin
    assert _utc(night.resolution_due_at) == at(24, 15)  # 1 + 8 + 7 h: Wed 16:00 Berlin
    # Friday 15:00 Berlin: 2 h on Friday, then Monday
    weekend = _load(app, _ticket(app, at(19, 14)))
    assert _utc(weekend.first_response_due_at) == at(22, 10)  # Mon 11:00 Berlin
    assert _utc(weekend.resolution_due_at) == at(23, 14)  # 2 + 8 + 6 h: Tue 15:00 Berlin
    # Wednesday 24th 16:30 Berlin, urgent: 30 min, then Christmas, Boxing Day, the weekend
    holiday = _load(app, _ticket(app, at(24, 15, 30), priority="urgent"))
    assert _utc(holiday.first_response_due_at) == at(29, 8, 30)  # Mon 29th 09:30 Berlin
    assert _utc(holiday.resolution_due_at) == at(29, 11, 30)  # 0.5 + 3.5 h
    # no policy for "low": no SLA
    low = _load(app, _ticket(app, at(22, 9), priority="low"))
    assert low.first_response_due_at is None and low.resolution_due_at is None


def test_pending_pauses_the_resolution_clock(sla_site, monkeypatch):
    app, client, headers = sla_site[0], sla_site[1], sla_site[2]
    ticket_id = _ticket(app, at(22, 8))  # Monday 09:00 Berlin
    assert _utc(_load(app, ticket_id).resolution_due_at) == at(23, 16)  # Tue 17:00 Berlin
    _reply(app, ticket_id, at(22, 9))  # the first response is in time
    _set_status(app, monkeypatch, ticket_id, "pending", at(22, 14))  # Mon 15:00 Berlin
    assert client.get(f"/api/v1/ticket/{ticket_id}", headers=headers["admin"]) \
        .get_json()["result"]["sla_state"] == "paused"
    # back at Tue 11:00 Berlin: paused 2 h on Monday + 2 h on Tuesday (not the night)
    _set_status(app, monkeypatch, ticket_id, "open", at(23, 10))
    ticket = _load(app, ticket_id)
    assert ticket.sla_paused_hours == pytest.approx(4.0)
    assert ticket.sla_paused_at is None
    assert _utc(ticket.resolution_due_at) == at(24, 12)  # 16 + 4 h: Wed 13:00 Berlin
    # a pause that starts after the due time moves nothing
    late = _ticket(app, at(22, 8), subject="Late")
    _set_status(app, monkeypatch, late, "pending", at(24, 8))
    _set_status(app, monkeypatch, late, "open", at(24, 12))
    assert _utc(_load(app, late).resolution_due_at) == at(23, 16)


def _scenario(app, ids):
    """The tickets of the breach-job tests, and what the job must find."""
    t = {
        # first response due Tue 11:00 UTC: at risk at 10:30, breached at 11:05
        "soon": _ticket(app, at(22, 15), subject="Soon", team_id=ids["support"],
                        assignee_id=ids["ann"]),
        # first response due Mon 12:00 UTC, never answered: breached
        "late": _ticket(app, at(22, 8), subject="Late", team_id=ids["support"],
                        assignee_id=ids["bob"]),
        # answered in time, resolution due Tue 16:00 UTC: on track at 10:30
        "fine": _ticket(app, at(22, 8), subject="Fine", team_id=ids["support"],
                        assignee_id=ids["cid"]),
        # waiting on the customer: paused, never flagged
        "waiting": _ticket(app, at(22, 8), subject="Waiting", status="pending",
                           team_id=ids["support"], assignee_id=ids["ann"]),
        # resolved in time: never flagged
        "done": _ticket(app, at(22, 8), subject="Done", status="resolved",
                        team_id=ids["support"], assignee_id=ids["ann"]),
        # unassigned and late: the pool (service managers, admins) is told
        "queue": _ticket(app, at(22, 8), subject="Queue"),
    }
    _reply(app, t["fine"], at(22, 9))
    _reply(app, t["waiting"], at(22, 9))
    _reply(app, t["done"], at(22, 9))
    return t


def _flags(app):
    from trellis_service.models import Ticket

    with app.app_context():
        db.session.remove()
        rows = db.session.execute(select(Ticket.subject, Ticket.sla_at_risk_at,
                                         Ticket.sla_breached_at, Ticket.priority)).all()
    return ({s for s, risk, _, _ in rows if risk is not None},
            {s for s, _, breached, _ in rows if breached is not None},
            {s: p for s, _, _, p in rows})


def _notes(app):
    with app.app_context():
        return sorted((n.user_id, n.subject) for n in db.session.scalars(select(Notification)))


def test_breach_job_flags_notifies_and_escalates_exactly_once(sla_site):
    app, client, headers, ids, events = sla_site
    t = _scenario(app, ids)
    with app.app_context():
        counts = jobs.execute("service.check_sla", {"now": at(23, 10, 30).isoformat()})
    assert counts == {"at_risk": 1, "breached": 2, "escalated": 2, "notified": 5}
    risky, breached, priority = _flags(app)
    assert risky == {"Soon"} and breached == {"Late", "Queue"}
    assert priority["Late"] == "high" and priority["Queue"] == "high"  # raised one step
    assert priority["Soon"] == "normal"
    assert _notes(app) == sorted([
        (ids["ann"], f"SLA at risk: ticket #{t['soon']} Soon"),
        (ids["bob"], f"SLA breached: ticket #{t['late']} Late"),
        (ids["boss"], f"Escalation: ticket #{t['late']} Late breached its SLA"),
        (ids["boss"], f"SLA breached: ticket #{t['queue']} Queue"),
        (ids["admin"], f"SLA breached: ticket #{t['queue']} Queue"),
    ])
    states = {r["subject"]: r["sla_state"] for r in
              client.get("/api/v1/ticket/", headers=headers["admin"]).get_json()["result"]}
    assert states["Late"] == "breached" and states["Waiting"] == "paused"
    assert states["Done"] == "met"
    # again: nothing new
    with app.app_context():
        again = jobs.execute("service.check_sla", {"now": at(23, 10, 40).isoformat()})
    assert again == {"at_risk": 0, "breached": 0, "escalated": 0, "notified": 0}
    # later: the at-risk ticket breaches too, and is escalated to the team manager
    with app.app_context():
        later = jobs.execute("service.check_sla", {"now": at(23, 11, 5).isoformat()})
    assert later["breached"] == 1 and later["escalated"] == 1
    assert _flags(app)[1] == {"Late", "Queue", "Soon"}
    fired = sorted((e.name, e.data["ticket_id"]) for e in events.events
                   if e.name.startswith("ticket.sla_"))
    assert fired == sorted([("ticket.sla_at_risk", t["soon"]), ("ticket.sla_breached", t["late"]),
                            ("ticket.sla_breached", t["queue"]),
                            ("ticket.sla_breached", t["soon"])])


def test_job_is_registered_and_scheduled(sla_site):
    ext = sla_site[0].extensions["trellis"]
    assert "service.check_sla" in ext.jobs.specs
    assert any(s.job == "service.check_sla" for _, s in ext.jobs.schedules)


TRELLIS = str(Path(sys.executable).parent / "trellis")


@pytest.mark.postgres
@pytest.mark.redis
def test_breach_job_under_a_real_rq_worker_on_postgresql(trellis_app_factory, make_user,
                                                          api_login, postgres_url, redis_url,
                                                          tmp_path):
    app = trellis_app_factory(plugins=["service"], database_url=postgres_url,
                              redis_url=redis_url)
    client, headers, ids = setup_site(app, make_user, api_login)
    _configure(app)
    t = _scenario(app, ids)
    cfg = app.config
    env = {**os.environ,
           "TRELLIS_DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
           "TRELLIS_REDIS_URL": cfg["TRELLIS_REDIS_URL"],
           "TRELLIS_QUEUE_PREFIX": cfg["TRELLIS_QUEUE_PREFIX"],
           "TRELLIS_SECRET_KEY": cfg["SECRET_KEY"],
           "TRELLIS_INSTANCE_PATH": str(tmp_path / "worker"),
           "TRELLIS_PLUGINS": "service",
           "TRELLIS_PLUGIN_STATE_TTL": "0"}
    with app.app_context():
        # the timeline handlers of the set-up are queued too; the worker runs them all
        jobs.enqueue("service.check_sla", now=at(23, 10, 30).isoformat())
    worker = subprocess.Popen([TRELLIS, "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _flags(app)[1]:
            time.sleep(0.3)
        risky, breached, priority = _flags(app)
        assert risky == {"Soon"} and breached == {"Late", "Queue"}
        assert priority["Late"] == "high"
        notes = _notes(app)
        assert (ids["boss"], f"Escalation: ticket #{t['late']} Late breached its SLA") in notes
        assert len(notes) == 5
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        with app.app_context():
            for queue in {s.queue for _, s in app.extensions["trellis"].jobs.specs.values()}:
                app.extensions["trellis"].jobs.queue(queue).empty()


def test_auto_close_closes_resolved_tickets_after_n_days(sla_site, monkeypatch):
    app = sla_site[0]
    contact = sla_site[3]["contact"]
    old = _ticket(app, at(1, 9), subject="Old", contact_id=contact)
    recent = _ticket(app, at(1, 9), subject="Recent")
    still_open = _ticket(app, at(1, 9), subject="Open")
    _set_status(app, monkeypatch, old, "resolved", at(1, 10))
    _set_status(app, monkeypatch, recent, "resolved", at(6, 10))
    with app.app_context():  # the default: 7 days
        assert jobs.execute("service.auto_close", {"now": at(8, 10, 30).isoformat()}) == {
            "closed": 1}
        assert jobs.execute("service.auto_close", {"now": at(8, 11).isoformat()}) == {
            "closed": 0}
    assert _load(app, old).status == "closed"
    assert _utc(_load(app, old).closed_at) == at(8, 10, 30)
    assert _load(app, recent).status == "resolved"
    assert _load(app, still_open).status == "new"
    from trellis.models import Activity

    with app.app_context():
        assert "ticket.closed" in db.session.scalars(select(Activity.type).where(
            Activity.contact_id == contact)).all()


class TierPlugin:
    """Stands in for the scoring plugin: customers at vip.example are 'gold'."""

    from trellis import hookimpl as _hookimpl

    @_hookimpl
    def trellis_manifest(self):
        from trellis.specs import Manifest

        return Manifest(label="Tiers (tests)")

    @_hookimpl
    def trellis_customer_features(self):
        from sqlalchemy import literal

        from trellis.models import Contact
        from trellis.specs import FeatureSpec

        return [FeatureSpec("customer_tier", "Tier", lambda: select(
            Contact.id.label("contact_id"), literal("gold").label("value"))
            .where(Contact.email.like("%@vip.example")), kind="text")]


def test_policy_per_customer_tier_through_a_feature(trellis_app_factory, api_login):
    from trellis.models import Contact
    from trellis_service.models import SlaPolicy

    app = trellis_app_factory(plugins=["service"], extra_plugins=[("tiers", TierPlugin())])
    _configure(app)
    client = app.test_client()
    headers = api_login(client)
    gold = client.post("/api/v1/sla_policy/", headers=headers,
                       json={"priority": "normal", "tier": "gold", "first_response_hours": 1,
                             "resolution_hours": 8})
    assert gold.status_code == 201, gold.get_json()
    twice = client.post("/api/v1/sla_policy/", headers=headers,
                        json={"priority": "normal", "first_response_hours": 2,
                              "resolution_hours": 8})
    assert twice.status_code == 400 and list(twice.get_json()["message"]) == ["priority"]
    with app.app_context():
        vip = Contact(first_name="V", last_name="Ip", email="v@vip.example")
        plain = Contact(first_name="P", last_name="Lain", email="p@plain.example")
        db.session.add_all([vip, plain])
        db.session.commit()
        vip_id, plain_id = vip.id, plain.id
        assert db.session.scalar(select(SlaPolicy.tier).where(SlaPolicy.id == gold.get_json()["id"])) == "gold"
    # Monday 22nd 09:00 Berlin: gold gets 1 h, everyone else the normal 4 h
    assert _utc(_load(app, _ticket(app, at(22, 8), contact_id=vip_id))
                .first_response_due_at) == at(22, 9)
    assert _utc(_load(app, _ticket(app, at(22, 8), contact_id=plain_id))
                .first_response_due_at) == at(22, 12)
    assert _utc(_load(app, _ticket(app, at(22, 8))).first_response_due_at) == at(22, 12)


def test_escalation_can_hand_the_ticket_to_the_team_manager(sla_site):
    from trellis.settings import update_settings
    from trellis_service.models import Ticket

    app, client, headers, ids, events = sla_site
    with app.app_context():
        update_settings("service", {"escalate_reassign": True, "escalate_raise_priority": False})
        db.session.commit()
    t = _scenario(app, ids)
    with app.app_context():
        jobs.execute("service.check_sla", {"now": at(23, 10, 30).isoformat()})
        late = db.session.get(Ticket, t["late"])
        queue = db.session.get(Ticket, t["queue"])
        assert (late.assignee_id, late.priority) == (ids["boss"], "normal")
        assert queue.assignee_id is None  # no team, no manager
        assert db.session.get(Ticket, t["soon"]).assignee_id == ids["ann"]  # only at risk
    # the list shows the SLA state
    listed = {r["subject"]: r["sla_state"] for r in
              client.get("/api/v1/ticket/", headers=headers["boss"]).get_json()["result"]}
    assert listed["Late"] == "breached" and listed["Done"] == "met"
