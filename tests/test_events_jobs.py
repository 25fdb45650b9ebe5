"""Events after commit, handlers isolated, jobs by name, plugin lifecycle — embedded mode."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from trellis import hookimpl
from trellis.db import db
from trellis.events import emit
from trellis.jobs import JobError, enqueue
from trellis.models import Contact
from trellis.specs import EventHandler, JobSpec, Manifest

from tests.test_kernel import plugin


@pytest.fixture
def captured(trellis_app_factory, event_capture):
    app = trellis_app_factory(extra_plugins=[("capture", event_capture)])
    return app, event_capture


def test_record_events_fire_after_commit_with_the_changes(captured):
    app, capture = captured
    with app.app_context():
        contact = Contact(first_name="Ada", last_name="Lovelace")
        db.session.add(contact)
        db.session.flush()
        assert capture.events == []  # flushed, not committed: nothing yet
        db.session.commit()
        assert capture.names() == ["contact.created"]
        created = capture.events[0]
        assert created.record_id == contact.id and created.plugin == "core"
        assert created.changes["last_name"] == {"old": None, "new": "Lovelace"}
        contact.email = "ada@engine.example"
        db.session.commit()
        assert capture.events[-1].name == "contact.updated"
        assert capture.events[-1].changes == {
            "email": {"old": None, "new": "ada@engine.example"}}


def test_no_event_for_a_rolled_back_change(captured):
    app, capture = captured
    with app.app_context():
        db.session.add(Contact(first_name="Ghost", last_name="Writer"))
        db.session.flush()
        emit("ghost.seen", {"n": 1})
        db.session.rollback()
        db.session.add(Contact(first_name="Real", last_name="Person"))
        db.session.commit()
    assert capture.names() == ["contact.created"]
    assert capture.events[0].changes["first_name"]["new"] == "Real"


def test_named_events_wait_for_the_commit_or_go_at_once_outside_a_transaction(captured):
    app, capture = captured
    with app.app_context():
        emit("deal.won", {"amount": 10})
        assert capture.names() == ["deal.won"]
        db.session.add(Contact(first_name="A", last_name="B"))
        emit("deal.lost", {"reason": "price"})
        assert capture.names() == ["deal.won"]
        db.session.commit()
    # the earlier change's record event comes before the named event
    assert capture.names() == ["deal.won", "contact.created", "deal.lost"]
    assert capture.events[2].data == {"reason": "price"}


def test_events_after_a_set_based_write_wait_for_its_commit(captured):
    """``session.execute(update(...))`` writes without a flush; an event queued after
    it must not go before that write commits (nor, on SQLite, wait on its lock)."""
    from sqlalchemy import insert, update

    app, capture = captured
    with app.app_context():
        db.session.execute(insert(Contact), [{"first_name": "Set", "last_name": "Based"}])
        emit("bulk.imported", {"rows": 1})
        assert capture.names() == []
        db.session.commit()
        assert capture.names() == ["bulk.imported"]
        db.session.execute(update(Contact).values(email="set@example.com"))
        emit("bulk.updated")
        assert capture.names() == ["bulk.imported"]
        db.session.rollback()
    assert capture.names() == ["bulk.imported"]  # the rolled-back write took its event


def test_a_rolled_back_savepoint_drops_only_what_it_queued(captured):
    app, capture = captured
    with app.app_context():
        db.session.add(Contact(first_name="Kept", last_name="Outer"))
        emit("outer.event")
        savepoint = db.session.begin_nested()
        db.session.add(Contact(first_name="Dropped", last_name="Inner"))
        emit("inner.event")
        savepoint.rollback()
        db.session.commit()
    assert capture.names() == ["contact.created", "outer.event"]
    assert capture.events[0].changes["first_name"]["new"] == "Kept"


def test_a_released_savepoint_keeps_its_writes_pending(captured):
    """SQLAlchemy reports a released SAVEPOINT as a commit: its writes are still
    uncommitted, so an event queued after it must wait for the real commit."""
    from sqlalchemy import insert

    app, capture = captured
    with app.app_context():
        with db.session.begin_nested():
            db.session.execute(insert(Contact), [{"first_name": "In", "last_name": "Savepoint"}])
        emit("after.savepoint")
        assert capture.names() == []
        db.session.commit()
    assert capture.names() == ["after.savepoint"]


def test_a_handler_that_keeps_triggering_itself_is_stopped(trellis_app_factory, caplog):
    calls = []

    def trellis_event_handlers(self):
        def again(event):
            calls.append(event.name)
            emit("loop.tick")
        return [EventHandler("loop.tick", again)]

    app = trellis_app_factory(extra_plugins=[
        ("crm_loop", plugin("Loop", trellis_event_handlers=trellis_event_handlers))])
    with app.app_context():
        db.session.add(Contact(first_name="L", last_name="Oop"))
        emit("loop.tick")
        db.session.commit()
    assert 1 < len(calls) <= 10
    assert "event dispatch nested 8 deep" in caplog.text


def test_schedules_run_in_process_without_redis_and_only_while_enabled(trellis_app_factory):
    import threading

    from trellis import lifecycle
    from trellis.jobs import run_schedules_in_process
    from trellis.specs import ScheduleSpec

    runs = []

    class Ticker:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Ticker")

        @hookimpl
        def trellis_jobs(self):
            return [JobSpec("ticker.tick", lambda: runs.append(1))]

        @hookimpl
        def trellis_schedules(self):
            return [ScheduleSpec("ticker.tick", interval=1)]

    app = trellis_app_factory(extra_plugins=[("ticker", Ticker())])
    stop = threading.Event()
    thread = threading.Thread(target=run_schedules_in_process, args=(app, stop, 0.1))
    thread.start()
    try:
        deadline = threading.Event()
        deadline.wait(2.5)
        assert 2 <= len(runs) <= 4
        with app.app_context():
            lifecycle.disable(app.extensions["trellis"], "ticker")
        before = len(runs)
        deadline.wait(2.2)
        assert len(runs) == before
    finally:
        stop.set()
        thread.join(5)


def test_a_schedule_needs_exactly_one_of_interval_or_cron(trellis_app_factory):
    from trellis.specs import ScheduleSpec

    bad = plugin("Bad schedule",
                 trellis_jobs=lambda self: [JobSpec("bad.job", lambda: None)],
                 trellis_schedules=lambda self: [ScheduleSpec("bad.job")])
    app = trellis_app_factory(extra_plugins=[("crm_bad", bad)])
    assert app.extensions["trellis"].plugins.by_name["crm_bad"].error == (
        "failed to register: schedule of 'bad.job' needs either interval or cron")


def test_a_failing_handler_does_not_stop_the_others_or_the_write(trellis_app_factory,
                                                                    event_capture, caplog):
    def trellis_event_handlers(self):
        def explode(event):
            raise RuntimeError("handler bug")
        return [EventHandler("contact.created", explode)]

    app = trellis_app_factory(extra_plugins=[
        ("crm_buggy", plugin("Buggy", trellis_event_handlers=trellis_event_handlers)),
        ("capture", event_capture)])
    with app.app_context():
        db.session.add(Contact(first_name="Still", last_name="Saved"))
        db.session.commit()
        assert db.session.scalar(select(Contact.last_name)) == "Saved"
    assert event_capture.names() == ["contact.created"]
    assert "event handler of plugin 'crm_buggy' failed on contact.created" in caplog.text


def test_disabled_plugin_handlers_and_jobs_do_not_run(trellis_app_factory, event_capture):
    from trellis import lifecycle

    runs = []

    class Worker:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Worker")

        @hookimpl
        def trellis_jobs(self):
            return [JobSpec("worker.count", lambda n: runs.append(n))]

    app = trellis_app_factory(extra_plugins=[("capture", event_capture), ("worker", Worker())])
    ext = app.extensions["trellis"]
    with app.app_context():
        enqueue("worker.count", n=1)
        assert runs == [1]
        lifecycle.disable(ext, "capture")
        lifecycle.disable(ext, "worker")
        db.session.add(Contact(first_name="Quiet", last_name="Please"))
        db.session.commit()
        with pytest.raises(JobError, match="belongs to plugin 'worker', which is disabled"):
            enqueue("worker.count", n=2)
        from trellis.jobs import execute

        assert execute("worker.count", {"n": 3}) is None  # a queued job finds it disabled
    assert event_capture.events == [] and runs == [1]
    with app.app_context(), pytest.raises(JobError, match="no job named 'worker.nope'"):
        enqueue("worker.nope")


def test_jobs_enqueued_in_a_transaction_run_only_after_it_commits(trellis_app_factory):
    runs = []

    class Jobs:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Jobs")

        @hookimpl
        def trellis_jobs(self):
            return [JobSpec("jobs.record", lambda tag: runs.append(tag))]

    app = trellis_app_factory(extra_plugins=[("jobs", Jobs())])
    with app.app_context():
        db.session.add(Contact(first_name="T", last_name="X"))
        enqueue("jobs.record", tag="rolled back")
        db.session.rollback()
        db.session.add(Contact(first_name="T", last_name="Y"))
        enqueue("jobs.record", tag="committed")
        assert runs == []
        db.session.commit()
    assert runs == ["committed"]


# ---------------------------------------------------------------- the example plugin


@pytest.fixture
def callnotes(trellis_app_factory):
    return trellis_app_factory(plugins=["callnotes"])


def test_example_plugin_is_discovered_from_its_installed_entry_point(callnotes):
    ext = callnotes.extensions["trellis"]
    plugin_ = ext.plugins.by_name["callnotes"]
    assert plugin_.ok and plugin_.version == "0.1.0" and plugin_.label == "Call notes"
    assert ext.registry.get("call").plugin == "callnotes"
    assert "callnotes.flag_long_calls" in ext.jobs.specs
    assert [s.job for p, s in ext.jobs.schedules if p == "callnotes"] == [
        "callnotes.flag_long_calls"]


def test_example_plugin_view_api_handler_job_and_setting(callnotes, api_login):
    client = callnotes.test_client()
    headers = api_login(client)
    contact = client.post("/api/v1/contact/", headers=headers,
                          json={"first_name": "Kim", "last_name": "Lee"}).get_json()["id"]
    bad = client.post("/api/v1/call/", headers=headers,
                      json={"contact_id": contact, "subject": "", "minutes": -5})
    assert bad.status_code == 400
    assert set(bad.get_json()["message"]) == {"subject", "minutes"}
    for subject, minutes in [("Intro", 10), ("Contract review", 45)]:
        response = client.post("/api/v1/call/", headers=headers,
                               json={"contact_id": contact, "subject": subject,
                                     "minutes": minutes})
        assert response.status_code == 201, response.get_json()
    timeline = client.get(
        f"/api/v1/activity/?q=(filters:!((col:contact_id,opr:eq,value:{contact})))",
        headers=headers).get_json()["result"]
    assert sorted((a["type"], a["subject"], a["plugin"]) for a in timeline) == [
        ("call", "Contract review", "callnotes"), ("call", "Intro", "callnotes")]
    assert client.put("/api/v1/settings/callnotes", headers=headers,
                      json={"long_call_minutes": 0}).status_code == 400
    assert client.put("/api/v1/settings/callnotes", headers=headers,
                      json={"long_call_minutes": 40}).status_code == 200
    with callnotes.app_context():
        enqueue("callnotes.flag_long_calls")
    calls = client.get("/api/v1/call/", headers=headers).get_json()["result"]
    assert {c["subject"]: c["long_call"] for c in calls} == {
        "Intro": False, "Contract review": True}
    assert client.get("/callview/list/", headers=headers).status_code in (302, 401)


def test_disable_hides_the_api_and_keeps_data_then_enable_restores_it(callnotes, api_login):
    client = callnotes.test_client()
    headers = api_login(client)
    contact = client.post("/api/v1/contact/", headers=headers,
                          json={"first_name": "Kim", "last_name": "Lee"}).get_json()["id"]
    client.post("/api/v1/call/", headers=headers, json={"contact_id": contact, "subject": "Hi"})
    assert client.post("/api/v1/plugins/callnotes/disable", headers=headers).status_code == 200
    assert client.get("/api/v1/call/", headers=headers).status_code == 404
    assert client.get("/api/v1/call/1", headers=headers).status_code == 404
    rows = client.get("/api/v1/plugins/", headers=headers).get_json()["result"]
    assert {r["name"]: r["enabled"] for r in rows}["callnotes"] is False
    assert client.post("/api/v1/plugins/callnotes/enable", headers=headers).status_code == 200
    calls = client.get("/api/v1/call/", headers=headers).get_json()["result"]
    assert [c["subject"] for c in calls] == ["Hi"]


def test_plugins_api_refuses_what_dependencies_forbid(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["sales", "scoring"])
    client = app.test_client()
    headers = api_login(client)
    response = client.post("/api/v1/plugins/sales/disable", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["message"] == (
        "plugin 'sales' cannot be disabled: enabled plugin(s) 'scoring' depend on it; "
        "disable them first")
    assert client.post("/api/v1/plugins/scoring/disable", headers=headers).status_code == 200
    assert client.post("/api/v1/plugins/sales/disable", headers=headers).status_code == 200
    response = client.post("/api/v1/plugins/scoring/enable", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["message"] == (
        "plugin 'scoring' depends on 'sales': enable it first")
    assert client.post("/api/v1/plugins/core/disable", headers=headers).status_code == 400
    assert client.post("/api/v1/plugins/nope/enable", headers=headers).status_code == 404


def test_enable_later_applies_the_migration_and_uninstall_drops_it(trellis_app_factory):
    from trellis import lifecycle
    from trellis.migrate import heads_in_database

    app = trellis_app_factory(plugins=["callnotes"], enable=[])
    ext = app.extensions["trellis"]
    with app.app_context():
        assert not inspect(db.engine).has_table("callnotes_call")
        lifecycle.enable(ext, "callnotes")
        granted = [pv.view_menu.name for pv in app.appbuilder.sm.find_role("CRM User").permissions]
        assert "callnotes.Call" in granted
        assert inspect(db.engine).has_table("callnotes_call")
        assert "0001_callnotes" in heads_in_database(ext)
        with pytest.raises(Exception, match="is enabled: disable it before uninstalling"):
            lifecycle.uninstall(ext, "callnotes")
        lifecycle.disable(ext, "callnotes")
        assert inspect(db.engine).has_table("callnotes_call")  # disabling keeps data
        lifecycle.uninstall(ext, "callnotes")
        assert not inspect(db.engine).has_table("callnotes_call")
        assert "0001_callnotes" not in heads_in_database(ext)
        sm = app.appbuilder.sm
        assert sm.find_view_menu("callnotes.Call") is None
        assert sm.find_view_menu("core.Contact") is not None
        db.session.expire_all()
        crm_user = [pv.view_menu.name for pv in sm.find_role("CRM User").permissions]
        assert "core.Contact" in crm_user
        assert not [name for name in crm_user if name.startswith("callnotes.")]
