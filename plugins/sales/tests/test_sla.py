"""The first-response SLA of leads: due times, first contact, the periodic check."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from trellis import jobs
from trellis.db import db
from trellis.models import BusinessCalendar, Notification, Team
from trellis.settings import get_settings, update_settings

UTC = timezone.utc
MON_9 = datetime(2025, 11, 24, 9, tzinfo=UTC)  # a Monday


def _setup(app, make_user, api_login, with_team=True):
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"]),
           "boss": make_user(app, "boss", ["Sales Manager"])}
    with app.app_context():
        sm = app.appbuilder.sm
        ids["admin"] = sm.find_user(username="admin").id
        if with_team:
            db.session.add(Team(name="EMEA", manager_id=ids["boss"],
                                members=[sm.get_user_by_id(ids["rep"]),
                                         sm.get_user_by_id(ids["rep2"])]))
        db.session.commit()
    client = app.test_client()
    headers = {name: api_login(client, name, "pw-123456") for name in ("rep", "rep2", "boss")}
    headers["admin"] = api_login(client)
    return client, headers, ids


@pytest.fixture
def sales(trellis_app_factory, make_user, api_login, event_capture):
    app = trellis_app_factory(plugins=["sales"], extra_plugins=[("capture", event_capture)])
    client, headers, ids = _setup(app, make_user, api_login)
    return app, client, headers, ids, event_capture


def _lead(app, created=MON_9, **values):
    from trellis_sales.models import Lead

    with app.app_context():
        lead = Lead(last_name=values.pop("last_name", "Lead"), created_on=created, **values)
        db.session.add(lead)
        db.session.commit()
        return lead.id


def _get(app, lead_id):
    from trellis_sales.models import Lead

    with app.app_context():
        return db.session.get(Lead, lead_id)


def _notes(app):
    with app.app_context():
        return sorted((n.user_id, n.dedupe_key.rsplit(":", 1)[-1], n.subject)
                      for n in db.session.scalars(select(Notification)))


def _utc(value):
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def test_a_new_lead_gets_a_due_time_in_business_hours(sales):
    app, client, headers, ids, _ = sales
    # Monday 09:00 + 4 business hours (Mon-Fri 09-17 UTC without a calendar)
    lead_id = _lead(app, owner_id=ids["rep"])
    assert _utc(_get(app, lead_id).response_due_at) == datetime(2025, 11, 24, 13, tzinfo=UTC)
    # Friday 15:00 -> Monday 11:00
    lead_id = _lead(app, created=datetime(2025, 11, 28, 15, tzinfo=UTC))
    assert _utc(_get(app, lead_id).response_due_at) == datetime(2025, 12, 1, 11, tzinfo=UTC)

    # the default calendar and the setting are honoured
    with app.app_context():
        db.session.add(BusinessCalendar(name="Berlin", timezone="Europe/Berlin",
                                        is_default=True))
        db.session.commit()
    with app.app_context():
        update_settings("sales", {"lead_response_hours": 2})
        db.session.commit()
        assert get_settings("sales")["lead_response_hours"] == 2
    lead_id = _lead(app, created=datetime(2025, 11, 24, 15, 30, tzinfo=UTC))  # 16:30 Berlin
    # 30 minutes on Monday, 90 on Tuesday from 09:00 Berlin (08:00 UTC)
    assert _utc(_get(app, lead_id).response_due_at) == datetime(2025, 11, 25, 9, 30, tzinfo=UTC)

    # through the API, with the real clock
    created = client.post("/api/v1/lead/", headers=headers["rep"],
                          json={"last_name": "Api", "company": "Api Ltd"})
    assert created.status_code == 201, created.get_json()
    lead = _get(app, created.get_json()["id"])
    assert lead.response_due_at is not None and lead.first_contacted_at is None
    body = client.get(f"/api/v1/lead/{lead.id}", headers=headers["rep"]).get_json()["result"]
    assert body["sla_state"] in ("on_track", "at_risk", "breached")
    assert body["response_due_at"] is not None


def test_first_contact_by_status_or_by_a_done_call(sales):
    app, client, headers, ids, _ = sales
    rep = headers["rep"]
    by_status = client.post("/api/v1/lead/", headers=rep, json={"last_name": "Status"})
    lead_id = by_status.get_json()["id"]
    assert client.put(f"/api/v1/lead/{lead_id}", headers=rep,
                      json={"company": "Still new"}).status_code == 200
    assert _get(app, lead_id).first_contacted_at is None
    assert client.put(f"/api/v1/lead/{lead_id}", headers=rep,
                      json={"status": "contacted"}).status_code == 200
    first = _get(app, lead_id).first_contacted_at
    assert first is not None
    assert client.put(f"/api/v1/lead/{lead_id}", headers=rep,
                      json={"status": "qualified"}).status_code == 200
    assert _get(app, lead_id).first_contacted_at == first  # only the first time
    got = client.get(f"/api/v1/lead/{lead_id}", headers=rep).get_json()["result"]
    assert got["sla_state"] == "met"

    by_task = client.post("/api/v1/lead/", headers=rep, json={"last_name": "Task"}).get_json()
    lead_id = by_task["id"]
    todo = client.post("/api/v1/task/", headers=rep, json={
        "kind": "todo", "subject": "Research", "lead_id": lead_id,
        "done_at": "2025-11-24T10:00:00+00:00"})
    assert todo.status_code == 201, todo.get_json()
    assert _get(app, lead_id).first_contacted_at is None  # a to-do is not contact
    call = client.post("/api/v1/task/", headers=rep, json={
        "kind": "call", "subject": "Intro call", "lead_id": lead_id})
    assert call.status_code == 201
    assert _get(app, lead_id).first_contacted_at is None  # not done yet
    done = client.put(f"/api/v1/task/{call.get_json()['id']}", headers=rep,
                      json={"done_at": datetime.now(UTC).isoformat()})
    assert done.status_code == 200, done.get_json()
    assert _get(app, lead_id).first_contacted_at is not None
    assert _get(app, lead_id).status == "new"

    rows = client.get("/api/v1/lead/", headers=rep).get_json()["result"]
    assert {r["last_name"]: r["sla_state"] for r in rows} == {"Status": "met", "Task": "met"}


def test_check_lead_sla_flags_notifies_and_escalates_once(sales):
    app, client, headers, ids, capture = sales
    owned = _lead(app, last_name="Owned", first_name="Olga", owner_id=ids["rep"])  # due 13:00
    pool = _lead(app, last_name="Pool")                                            # due 13:00
    later = _lead(app, last_name="Later", owner_id=ids["rep"],
                  created=datetime(2025, 11, 24, 11, tzinfo=UTC))                  # due 15:00
    done = _lead(app, last_name="Done", owner_id=ids["rep2"], status="contacted")
    assert _get(app, done).first_contacted_at is not None
    capture.events.clear()

    with app.app_context():
        counts = jobs.execute("sales.check_lead_sla", {"now": "2025-11-24T11:00:00+00:00"})
    assert counts["notified"] == 0 and counts["escalated"] == 0
    assert _notes(app) == []

    # 12:30: within 60 minutes of 13:00 -> at risk
    with app.app_context():
        counts = jobs.execute("sales.check_lead_sla", {"now": "2025-11-24T12:30:00+00:00"})
    assert counts["at_risk"] == 2 and counts["breached"] == 0 and counts["escalated"] == 2
    notes = _notes(app)
    assert (ids["rep"], "at_risk", "Respond to lead Olga Owned by 2025-11-24 13:00 UTC") in notes
    assert (ids["boss"], "escalated", "Escalation: lead Olga Owned not contacted in time") \
        in notes
    # unassigned: the sales managers and admins
    assert (ids["boss"], "at_risk", "Respond to lead Pool by 2025-11-24 13:00 UTC") in notes
    assert (ids["admin"], "at_risk", "Respond to lead Pool by 2025-11-24 13:00 UTC") in notes
    assert len(notes) == 4
    assert _get(app, owned).sla_escalated_at is not None
    assert _get(app, later).sla_escalated_at is None
    assert sorted(e.data["lead_id"] for e in capture.events
                  if e.name == "lead.sla_at_risk") == [owned, pool]

    # run again: nothing new
    with app.app_context():
        counts = jobs.execute("sales.check_lead_sla", {"now": "2025-11-24T12:45:00+00:00"})
    assert counts["escalated"] == 0 and len(_notes(app)) == 4
    assert capture.names().count("lead.sla_at_risk") == 2

    # the rep calls Olga; 13:30: the pool lead is breached, Olga's SLA is met (no breach)
    with app.app_context():
        from trellis_sales.models import Task

        db.session.add(Task(kind="call", subject="Hello", lead_id=owned, owner_id=ids["rep"],
                            done_at=datetime(2025, 11, 24, 12, 50, tzinfo=UTC)))
        db.session.commit()
        jobs.execute("sales.check_lead_sla", {"now": "2025-11-24T13:30:00+00:00"})
    assert [e.data["lead_id"] for e in capture.events if e.name == "lead.sla_breached"] == [pool]
    notes = _notes(app)
    assert (ids["admin"], "breached", "First-response SLA missed: lead Pool") in notes
    assert not [n for n in notes if n[1] == "breached" and "Olga" in n[2]]
    # 14:00: "Later" (due 15:00) is at risk now... not yet: 15:00 - 60 min = 14:00
    with app.app_context():
        counts = jobs.execute("sales.check_lead_sla", {"now": "2025-11-24T14:00:00+00:00"})
    assert counts["at_risk"] == 1 and _get(app, later).sla_escalated_at is not None

    # states and the report, at the real time (all in the past by now)
    rows = client.get("/api/v1/lead/", headers=headers["admin"]).get_json()["result"]
    states = {r["last_name"]: r["sla_state"] for r in rows}
    assert states == {"Owned": "met", "Pool": "breached", "Later": "breached", "Done": "met"}
    report = client.get("/api/v1/lead/sla_report", headers=headers["admin"])
    assert report.status_code == 200, report.get_json()
    body = report.get_json()
    assert body["counts"] == {"met": 2, "on_track": 0, "at_risk": 0, "breached": 2}
    assert body["within_sla_share"] == 0.5
    # record rules: rep2 sees only the lead they own
    mine = client.get("/api/v1/lead/sla_report", headers=headers["rep2"]).get_json()
    assert mine["counts"]["met"] == 1 and mine["leads"] == 1
    bad = client.get("/api/v1/lead/sla_report?since=yesterday", headers=headers["admin"])
    assert bad.status_code == 400 and "since" in bad.get_json()["message"]


def test_sla_events_fire_once_even_when_nobody_could_be_told(sales):
    app, client, headers, ids, capture = sales
    lead = _lead(app, last_name="Nobody", owner_id=ids["rep"])  # due 13:00
    capture.events.clear()
    for now in ("2025-11-24T12:30:00+00:00", "2025-11-24T12:40:00+00:00",
                "2025-11-24T13:30:00+00:00", "2025-11-24T13:40:00+00:00"):
        with app.app_context():
            jobs.execute("sales.check_lead_sla", {"now": now})
            # as if no notification could be delivered (no recipient at all)
            db.session.query(Notification).delete()
            db.session.commit()
    assert [(e.name, e.data["lead_id"]) for e in capture.events
            if e.name.startswith("lead.sla_")] == [("lead.sla_at_risk", lead),
                                                   ("lead.sla_breached", lead)]
    stored = _get(app, lead)
    assert stored.sla_at_risk_at is not None and stored.sla_breached_at is not None


def test_weekend_and_warning_window_in_business_minutes(sales):
    app, client, headers, ids, capture = sales
    # Friday 16:30 + 4h -> due Monday 12:30; the 60-minute warning starts Monday 11:30,
    # so on Friday 17:30 the lead is still on track although due "soon" by the clock
    lead_id = _lead(app, owner_id=ids["rep"], created=datetime(2025, 11, 28, 16, 30, tzinfo=UTC))
    assert _utc(_get(app, lead_id).response_due_at) == datetime(2025, 12, 1, 12, 30,
                                                                tzinfo=UTC)
    with app.app_context():
        assert jobs.execute("sales.check_lead_sla",
                            {"now": "2025-11-30T20:00:00+00:00"})["at_risk"] == 0
        # Friday 16:45 with a 5-hour window: 15 minutes left on Friday + 4h45 on Monday
        update_settings("sales", {"lead_response_warn_minutes": 300})
        db.session.commit()
        assert jobs.execute("sales.check_lead_sla",
                            {"now": "2025-11-28T16:45:00+00:00"})["at_risk"] == 1


def test_job_is_registered_and_scheduled(sales):
    app = sales[0]
    ext = app.extensions["trellis"]
    assert "sales.check_lead_sla" in ext.jobs.specs
    assert any(s.job == "sales.check_lead_sla" for _, s in ext.jobs.schedules)


def test_check_lead_sla_on_postgresql(trellis_app_factory, make_user, api_login, postgres_url,
                                      event_capture):
    app = trellis_app_factory(plugins=["sales"], database_url=postgres_url,
                              extra_plugins=[("capture", event_capture)])
    client, headers, ids = _setup(app, make_user, api_login)
    owned = _lead(app, last_name="Owned", owner_id=ids["rep"])
    pool = _lead(app, last_name="Pool")
    assert _utc(_get(app, owned).response_due_at) == datetime(2025, 11, 24, 13, tzinfo=UTC)
    with app.app_context():
        counts = jobs.execute("sales.check_lead_sla", {"now": "2025-11-24T13:30:00+00:00"})
        again = jobs.execute("sales.check_lead_sla", {"now": "2025-11-24T13:40:00+00:00"})
    assert counts["breached"] == 2 and counts["escalated"] == 2
    assert again["escalated"] == 0
    notes = _notes(app)
    assert len(notes) == 4  # rep, boss (escalation); the pool lead: boss and admin
    assert (ids["rep"], "breached", "First-response SLA missed: lead Owned") in notes
    assert (ids["boss"], "escalated", "Escalation: lead Owned not contacted in time") in notes
    assert (ids["admin"], "breached", "First-response SLA missed: lead Pool") in notes
    assert sorted(e.data["lead_id"] for e in event_capture.events
                  if e.name == "lead.sla_breached") == [owned, pool]
    with app.app_context():
        body = next(n.body for n in db.session.scalars(select(Notification))
                    if n.user_id == ids["rep"])
    assert body == "This lead was due to be contacted by 2025-11-24 13:00 UTC."
    report = client.get("/api/v1/lead/sla_report", headers=headers["admin"]).get_json()
    assert report["counts"]["breached"] == 2 and report["within_sla_share"] == 0.0


def test_lead_list_page_shows_the_due_time_and_warns_of_duplicates(sales, web_login):
    from trellis.testing import csrf_token

    app, client, headers, ids, _ = sales
    lead_id = _lead(app, last_name="Webb", email="webb@example.com", owner_id=ids["rep"])
    web = app.test_client()
    web_login(web)
    page = web.get("/leadview/list/")
    assert page.status_code == 200 and "Respond by" in page.get_data(as_text=True)
    form = web.get("/leadview/add").get_data(as_text=True)
    added = web.post("/leadview/add", data={
        "last_name": "Webb", "email": "WEBB@example.com", "source": "manual", "status": "new",
        "csrf_token": csrf_token(form)}, follow_redirects=True).get_data(as_text=True)
    assert "Possible duplicate" in added and f'href="/leadview/show/{lead_id}"' in added
