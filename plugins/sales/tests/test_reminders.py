"""Follow-up reminders (due/overdue tasks, stale deals) and follow-up plans.

The jobs run through the jobs API (``execute``) on SQLite here, and under a real
``trellis worker`` on PostgreSQL + Redis in the last test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from trellis.db import db, utcnow
from trellis.jobs import execute
from trellis.models import Contact, Notification, Team
from trellis.testing import csrf_token
from trellis_sales.models import Deal, Task

TRELLIS = str(Path(sys.executable).parent / "trellis")


def make_site(app, make_user, api_login):
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"]),
           "boss": make_user(app, "boss", ["Sales Manager"])}
    with app.app_context():
        sm = app.appbuilder.sm
        db.session.add(Team(name="EMEA", manager_id=ids["boss"],
                            members=[sm.get_user_by_id(ids["rep"]),
                                     sm.get_user_by_id(ids["rep2"])]))
        db.session.add(Contact(first_name="Nina", last_name="North"))
        db.session.commit()
    client = app.test_client()
    headers = {name: api_login(client, name, "pw-123456") for name in ids}
    headers["admin"] = api_login(client)
    return client, headers, ids


@pytest.fixture
def sales(trellis_app_factory, make_user, api_login, event_capture):
    app = trellis_app_factory(plugins=["sales"], extra_plugins=[("capture", event_capture)])
    client, headers, ids = make_site(app, make_user, api_login)
    return app, client, headers, ids, event_capture


def add_deal(client, headers, name, **extra):
    response = client.post("/api/v1/deal/", headers=headers, json={"name": name, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def add_task(app, subject, owner_id, due_in, **extra):
    with app.app_context():
        contact = db.session.scalar(select(Contact.id))
        task = Task(kind="call", subject=subject, owner_id=owner_id,
                    due_at=utcnow() + due_in if due_in is not None else None,
                    contact_id=extra.pop("contact_id", contact), **extra)
        db.session.add(task)
        db.session.commit()
        return task.id


def notes(app, user_id=None):
    with app.app_context():
        stmt = select(Notification).order_by(Notification.id)
        if user_id is not None:
            stmt = stmt.where(Notification.user_id == user_id)
        return [(n.user_id, n.kind, n.subject, n.link) for n in db.session.scalars(stmt)]


def age_deals(app, days, *deal_ids):
    with app.app_context():
        db.session.execute(update(Deal).where(Deal.id.in_(deal_ids)).values(
            last_activity_at=utcnow() - timedelta(days=days)))
        db.session.commit()


def last_activity(app, deal_id):
    with app.app_context():
        db.session.remove()
        return db.session.get(Deal, deal_id).last_activity_at


# ------------------------------------------------------------------ due and overdue


def test_due_and_overdue_tasks_notify_their_owner_once(sales):
    app, client, headers, ids, capture = sales
    soon = add_task(app, "Call Nina", ids["rep"], timedelta(minutes=30))
    late = add_task(app, "Send offer", ids["rep"], timedelta(hours=-2))
    other = add_task(app, "Visit", ids["rep2"], timedelta(days=-1))
    add_task(app, "Later", ids["rep"], timedelta(hours=3))
    add_task(app, "No date", ids["rep"], None)
    add_task(app, "Done late", ids["rep"], timedelta(hours=-5), done_at=utcnow())
    capture.events.clear()
    with app.app_context():
        assert execute("sales.remind_tasks", {}) == {"due_soon": 1, "overdue": 2, "notified": 3}
    assert notes(app) == [
        (ids["rep"], "task.due", "Due soon: Call Nina", f"/taskview/show/{soon}"),
        (ids["rep"], "task.overdue", "Overdue: Send offer", f"/taskview/show/{late}"),
        (ids["rep2"], "task.overdue", "Overdue: Visit", f"/taskview/show/{other}"),
    ]
    overdue = [e for e in capture.events if e.name == "task.overdue"]
    assert sorted(e.data["task_id"] for e in overdue) == sorted([late, other])
    assert {e.data["task_id"]: e.data["owner_id"] for e in overdue} == {
        late: ids["rep"], other: ids["rep2"]}
    assert all(e.plugin == "sales" for e in overdue)
    # twice: nothing new, no second event
    capture.events.clear()
    with app.app_context():
        assert execute("sales.remind_tasks", {}) == {"due_soon": 0, "overdue": 0, "notified": 0}
    assert len(notes(app)) == 3 and not capture.names()
    # the due-soon task becomes overdue: told once more
    with app.app_context():
        db.session.execute(update(Task).where(Task.id == soon).values(
            due_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
        assert execute("sales.remind_tasks", {})["overdue"] == 1
    assert notes(app, ids["rep"])[-1] == (ids["rep"], "task.overdue", "Overdue: Call Nina",
                                          f"/taskview/show/{soon}")
    # each rep reads only their own reminders
    mine = client.get("/api/v1/notification/", headers=headers["rep2"]).get_json()
    assert [n["subject"] for n in mine["result"]] == ["Overdue: Visit"]


# ------------------------------------------------------------------ stale deals


def test_quiet_open_deals_get_one_follow_up_task(sales):
    app, client, headers, ids, _ = sales
    stages = {s["name"]: s["id"] for s in client.get(
        "/api/v1/stage/?q=(page_size:100)", headers=headers["admin"]).get_json()["result"]}
    quiet = add_deal(client, headers["rep"], "Quiet deal")
    busy = add_deal(client, headers["rep"], "Busy deal")
    won = add_deal(client, headers["rep"], "Won deal", stage_id=stages["Won"])
    covered = add_deal(client, headers["rep2"], "Has a task")
    add_task(app, "Already planned", ids["rep2"], timedelta(days=2), deal_id=covered)
    age_deals(app, 30, quiet, won, covered)
    age_deals(app, 3, busy)
    with app.app_context():
        assert execute("sales.stale_deals", {}) == {"tasks": 1, "notified": 1}
        tasks = db.session.scalars(select(Task).where(Task.origin == "stale")).all()
        assert [(t.deal_id, t.owner_id, t.kind, t.subject, t.done_at) for t in tasks] == [
            (quiet, ids["rep"], "todo", "Follow up: Quiet deal", None)]
        assert utcnow() < tasks[0].due_at.replace(tzinfo=utcnow().tzinfo) <= \
            utcnow() + timedelta(days=1)
        task_id = tasks[0].id
        assert execute("sales.stale_deals", {}) == {"tasks": 0, "notified": 0}  # idempotent
    assert notes(app) == [(ids["rep"], "deal.stale", "Deal gone quiet: Quiet deal",
                           f"/taskview/show/{task_id}")]
    # the threshold is the stale_deal_days setting
    assert client.put("/api/v1/settings/sales", headers=headers["admin"],
                      json={"stale_deal_days": 2}).status_code == 200
    with app.app_context():
        assert execute("sales.stale_deals", {})["tasks"] == 1  # the busy deal, 3 days quiet
        assert db.session.scalar(select(Task.deal_id).where(
            Task.origin == "stale", Task.id != task_id)) == busy


def test_changes_and_tasks_keep_a_deals_last_activity_current(sales):
    app, client, headers, ids, _ = sales
    deal = add_deal(client, headers["rep"], "Active")
    age_deals(app, 30, deal)
    assert client.put(f"/api/v1/deal/{deal}", headers=headers["rep"],
                      json={"amount": 500}).status_code == 200
    assert utcnow() - last_activity(app, deal).replace(tzinfo=utcnow().tzinfo) < \
        timedelta(minutes=1)
    age_deals(app, 30, deal)
    task = client.post("/api/v1/task/", headers=headers["rep"],
                       json={"kind": "call", "subject": "Ring", "deal_id": deal})
    assert task.status_code == 201, task.get_json()
    assert utcnow() - last_activity(app, deal).replace(tzinfo=utcnow().tzinfo) < \
        timedelta(minutes=1)
    age_deals(app, 30, deal)
    # editing a task is not activity; completing it is
    assert client.put(f"/api/v1/task/{task.get_json()['id']}", headers=headers["rep"],
                      json={"notes": "later"}).status_code == 200
    assert utcnow() - last_activity(app, deal).replace(tzinfo=utcnow().tzinfo) > \
        timedelta(days=29)
    assert client.put(f"/api/v1/task/{task.get_json()['id']}", headers=headers["rep"],
                      json={"done_at": utcnow().isoformat()}).status_code == 200
    assert utcnow() - last_activity(app, deal).replace(tzinfo=utcnow().tzinfo) < \
        timedelta(minutes=1)


# ------------------------------------------------------------------ follow-up plans


def make_plan(client, headers, name="Standard", steps=((1, "call", "Call"),
                                                      (3, "email", "E-mail recap"),
                                                      (7, "meeting", "Meet"))):
    plan = client.post("/api/v1/followup_plan/", headers=headers, json={"name": name})
    assert plan.status_code == 201, plan.get_json()
    plan_id = plan.get_json()["id"]
    for day, kind, subject in steps:
        step = client.post("/api/v1/followup_step/", headers=headers,
                           json={"plan_id": plan_id, "day": day, "kind": kind,
                                 "subject": subject})
        assert step.status_code == 201, step.get_json()
    return plan_id


def test_apply_a_plan_to_a_deal_or_a_lead(sales):
    app, client, headers, ids, _ = sales
    boss = headers["boss"]
    plan = make_plan(client, boss)
    # steps are checked on every path
    bad = client.post("/api/v1/followup_step/", headers=boss,
                      json={"plan_id": plan, "day": -1, "kind": "fax", "subject": "x"})
    assert bad.status_code == 400 and set(bad.get_json()["message"]) == {"day", "kind"}
    assert client.post("/api/v1/followup_plan/", headers=headers["rep"],
                       json={"name": "Mine"}).status_code == 403  # reps only read plans
    deal = add_deal(client, headers["rep"], "Northwind")
    other = add_deal(client, headers["rep2"], "Not yours")
    lead = client.post("/api/v1/lead/", headers=headers["rep"],
                       json={"last_name": "Lee", "company": "Acme"}).get_json()["id"]

    response = client.post(f"/api/v1/deal/{deal}/apply_plan", headers=headers["rep"],
                           json={"plan_id": plan})
    assert response.status_code == 201, response.get_json()
    task_ids = response.get_json()["task_ids"]
    with app.app_context():
        tasks = db.session.scalars(select(Task).where(Task.id.in_(task_ids))
                                   .order_by(Task.due_at)).all()
        today = utcnow().date()
        assert [(t.kind, t.subject, t.owner_id, t.deal_id, t.origin) for t in tasks] == [
            ("call", "Call", ids["rep"], deal, "plan"),
            ("email", "E-mail recap", ids["rep"], deal, "plan"),
            ("meeting", "Meet", ids["rep"], deal, "plan")]
        assert [(t.due_at.date() - today).days for t in tasks] == [1, 3, 7]
        assert {t.due_at.hour for t in tasks} == {9}  # start of business, default calendar
    # a rep cannot apply to another rep's deal; the manager can (team)
    assert client.post(f"/api/v1/deal/{other}/apply_plan", headers=headers["rep"],
                       json={"plan_id": plan}).status_code == 404
    response = client.post(f"/api/v1/deal/{other}/apply_plan", headers=boss,
                           json={"plan_id": plan})
    assert response.status_code == 201
    with app.app_context():
        assert {db.session.get(Task, t).owner_id for t in response.get_json()["task_ids"]} == {
            ids["rep2"]}  # the deal's owner, not the manager
    assert client.post("/api/v1/deal/99999/apply_plan", headers=boss,
                       json={"plan_id": plan}).status_code == 404
    # bad input: 400 with the field's error, nothing created
    empty = make_plan(client, boss, "Empty", steps=())
    for body, message in (({}, "Missing data for required field."),
                          ({"plan_id": "x"}, "Not a valid integer."),
                          ({"plan_id": True}, "Not a valid integer."),
                          ({"plan_id": 424242}, "No follow-up plan with id 424242."),
                          ({"plan_id": empty}, "The plan 'Empty' has no steps.")):
        response = client.post(f"/api/v1/deal/{deal}/apply_plan", headers=headers["rep"],
                               json=body)
        assert response.status_code == 400, body
        assert response.get_json()["message"] == {"plan_id": [message]}
    assert client.post(f"/api/v1/deal/{deal}/apply_plan", headers=headers["rep"],
                       data="[]", content_type="application/json").status_code == 400
    # leads too
    response = client.post(f"/api/v1/lead/{lead}/apply_plan", headers=headers["rep"],
                           json={"plan_id": plan})
    assert response.status_code == 201
    with app.app_context():
        assert db.session.scalar(select(Task.lead_id).where(
            Task.id == response.get_json()["task_ids"][0])) == lead
        assert db.session.query(Task).filter(Task.origin == "plan").count() == 9
    assert client.post(f"/api/v1/lead/{lead}/apply_plan", headers=headers["rep2"],
                       json={"plan_id": plan}).status_code == 404


def test_apply_a_plan_from_the_deal_page(sales, web_login, make_user):
    app, client, headers, ids, _ = sales
    plan = make_plan(client, headers["boss"])
    deal = add_deal(client, headers["rep"], "Web deal")
    other = add_deal(client, headers["rep2"], "Hidden")
    web_login(client, "rep", "pw-123456")
    show = client.get(f"/dealview/show/{deal}").get_data(as_text=True)
    assert "Apply follow-up plan" in show
    token = csrf_token(show)
    started = client.post(f"/dealview/action/apply_plan/{deal}", data={"csrf_token": token})
    assert started.status_code == 302 and started.headers["Location"].endswith(
        f"/dealplan/apply/{deal}")
    form = client.get(f"/dealplan/apply/{deal}")
    assert form.status_code == 200 and "Standard" in form.get_data(as_text=True)
    assert client.get(f"/dealplan/apply/{other}").status_code == 404
    assert client.post(f"/dealplan/apply/{deal}", data={"plan_id": plan}).status_code == 400
    bad = client.post(f"/dealplan/apply/{deal}",
                      data={"plan_id": "31337", "csrf_token": csrf_token(
                          form.get_data(as_text=True))})
    assert bad.status_code == 400 and "No follow-up plan with id 31337." in bad.get_data(
        as_text=True)
    with app.app_context():
        assert db.session.query(Task).count() == 0
    done = client.post(f"/dealplan/apply/{deal}", data={
        "plan_id": str(plan), "csrf_token": csrf_token(form.get_data(as_text=True))})
    assert done.status_code == 302 and done.headers["Location"].endswith(
        f"/dealview/show/{deal}")
    with app.app_context():
        assert db.session.query(Task).filter(Task.deal_id == deal).count() == 3
    # read-only users do not get the form
    make_user(app, "viewer", ["CRM Viewer"])
    viewer = app.test_client()
    web_login(viewer, "viewer", "pw-123456")
    assert viewer.get(f"/dealplan/apply/{deal}").status_code in (302, 403)


# ------------------------------------------------------------------ production path


@pytest.mark.postgres
@pytest.mark.redis
def test_reminder_jobs_run_under_a_real_rq_worker(trellis_app_factory, postgres_url, redis_url,
                                                  make_user, api_login, tmp_path):
    app = trellis_app_factory(plugins=["sales"], database_url=postgres_url,
                              redis_url=redis_url)
    client, headers, ids = make_site(app, make_user, api_login)
    quiet = add_deal(client, headers["rep"], "Quiet on Postgres")
    age_deals(app, 30, quiet)
    soon = add_task(app, "Call soon", ids["rep"], timedelta(minutes=20))
    late = add_task(app, "Overdue call", ids["rep2"], timedelta(hours=-1))
    cfg = app.config
    env = {**os.environ, "TRELLIS_DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
           "TRELLIS_REDIS_URL": cfg["TRELLIS_REDIS_URL"],
           "TRELLIS_QUEUE_PREFIX": cfg["TRELLIS_QUEUE_PREFIX"],
           "TRELLIS_SECRET_KEY": cfg["SECRET_KEY"],
           "TRELLIS_INSTANCE_PATH": str(tmp_path / "worker"), "TRELLIS_PLUGINS": "sales",
           "TRELLIS_PLUGIN_STATE_TTL": "0"}
    with app.app_context():
        from trellis.jobs import enqueue

        enqueue("sales.remind_tasks")
        enqueue("sales.stale_deals")
        queue = app.extensions["trellis"].jobs.queue("default")
        assert queue.count == 2  # on Redis, not run here
        assert db.session.query(Notification).count() == 0
    worker = subprocess.Popen([TRELLIS, "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = notes(app)
            if len(got) >= 3:
                break
            time.sleep(0.3)
        with app.app_context():
            db.session.remove()
            stale = db.session.scalars(select(Task).where(Task.origin == "stale")).all()
            assert [(t.deal_id, t.owner_id) for t in stale] == [(quiet, ids["rep"])]
            assert sorted(notes(app)) == sorted([
                (ids["rep"], "task.due", "Due soon: Call soon", f"/taskview/show/{soon}"),
                (ids["rep2"], "task.overdue", "Overdue: Overdue call",
                 f"/taskview/show/{late}"),
                (ids["rep"], "deal.stale", "Deal gone quiet: Quiet on Postgres",
                 f"/taskview/show/{stale[0].id}"),
            ])
            assert db.session.get(Task, late).overdue_sent_at is not None
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        with app.app_context():
            app.extensions["trellis"].jobs.queue("default").empty()
