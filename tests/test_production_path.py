"""The production path: PostgreSQL, Redis and real `trellis worker` processes.

These fail (not skip) on CI when PostgreSQL or Redis is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from trellis.db import db
from trellis.models import Activity, Contact

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

TRELLIS = str(Path(sys.executable).parent / "trellis")


def worker_env(app, tmp_path) -> dict[str, str]:
    """The environment a separately started worker needs to join this site."""
    cfg = app.config
    return {
        **os.environ,
        "TRELLIS_DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
        "TRELLIS_REDIS_URL": cfg["TRELLIS_REDIS_URL"],
        "TRELLIS_QUEUE_PREFIX": cfg["TRELLIS_QUEUE_PREFIX"],
        "TRELLIS_SECRET_KEY": cfg["SECRET_KEY"],
        "TRELLIS_INSTANCE_PATH": str(tmp_path / "worker"),
        "TRELLIS_PLUGINS": "callnotes",
        "TRELLIS_PLUGIN_STATE_TTL": "0",
    }


@pytest.fixture
def site(trellis_app_factory, postgres_url, redis_url, tmp_path):
    app = trellis_app_factory(plugins=["callnotes"], database_url=postgres_url,
                              redis_url=redis_url)
    workers: list[subprocess.Popen] = []

    def start_worker() -> subprocess.Popen:
        proc = subprocess.Popen([TRELLIS, "worker"], env=worker_env(app, tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        workers.append(proc)
        return proc

    yield app, start_worker
    for proc in workers:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    with app.app_context():
        for queue in {spec.queue for _, spec in app.extensions["trellis"].jobs.specs.values()}:
            app.extensions["trellis"].jobs.queue(queue).empty()


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_schema_on_postgres_has_every_table(site):
    app, _ = site
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {"ab_user", "ab_api_key", "trellis_contact", "trellis_activity", "trellis_audit",
            "trellis_plugin", "callnotes_call", "alembic_version"} <= tables


def test_background_handler_and_job_run_in_a_real_rq_worker(site, api_login):
    app, start_worker = site
    client = app.test_client()
    headers = api_login(client)
    contact = client.post("/api/v1/contact/", headers=headers,
                          json={"first_name": "Wen", "last_name": "Zhang"}).get_json()["id"]
    response = client.post("/api/v1/call/", headers=headers,
                           json={"contact_id": contact, "subject": "Renewal", "minutes": 50})
    assert response.status_code == 201
    with app.app_context():
        # queued in Redis, not run in-process
        assert db.session.scalar(select(func.count()).select_from(Activity)) == 0
        queue = app.extensions["trellis"].jobs.queue("default")
        assert queue.count == 1
    worker = start_worker()

    def timeline():
        with app.app_context():
            db.session.remove()
            return db.session.scalars(select(Activity).where(
                Activity.contact_id == contact)).all()

    activities = wait_for(timeline, what="the worker to run the call handler")
    assert [(a.type, a.subject, a.plugin) for a in activities] == [
        ("call", "Renewal", "callnotes")]
    assert activities[0].payload == {"call_id": response.get_json()["id"], "minutes": 50}
    with app.app_context():
        from trellis.jobs import enqueue

        enqueue("callnotes.flag_long_calls")
    calls = wait_for(lambda: [c for c in client.get("/api/v1/call/", headers=headers)
                              .get_json()["result"] if c["long_call"]],
                     what="the worker to run flag_long_calls")
    assert [c["subject"] for c in calls] == ["Renewal"]
    assert worker.poll() is None, worker.stdout.read()


def test_disabling_a_plugin_stops_its_jobs_in_running_workers(site, api_login):
    """Enabled state is read from the database by every process, without restarts."""
    from trellis.jobs import DISPATCHER

    app, start_worker = site
    client = app.test_client()
    headers = api_login(client)
    contact = client.post("/api/v1/contact/", headers=headers,
                          json={"first_name": "Ola", "last_name": "Nordmann"}).get_json()["id"]
    start_worker()
    assert client.post("/api/v1/plugins/callnotes/disable", headers=headers).status_code == 200
    with app.app_context():
        queue = app.extensions["trellis"].jobs.queue("default")
        db.session.add(Contact(first_name="x", last_name="y"))  # unrelated write
        db.session.commit()
        from trellis_callnotes.models import Call

        db.session.add(Call(contact_id=contact, subject="while disabled", minutes=99))
        db.session.commit()  # its handler is not enqueued: the plugin is disabled
        assert queue.count == 0
        # a job that was queued before the plugin was disabled is skipped by the worker
        job = queue.enqueue(DISPATCHER, "callnotes.flag_long_calls", {}, None)
    wait_for(lambda: job.get_status(refresh=True) == "finished", what="the worker to take the job")
    assert job.return_value() is None
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(Call.long_call)) is False
        assert db.session.scalar(select(func.count()).select_from(Activity)) == 0
    assert client.post("/api/v1/plugins/callnotes/enable", headers=headers).status_code == 200
    with app.app_context():
        job = app.extensions["trellis"].jobs.queue("default").enqueue(
            DISPATCHER, "callnotes.flag_long_calls", {}, None)
    wait_for(lambda: job.get_status(refresh=True) == "finished", what="the re-enabled job")
    assert job.return_value() == 1


def test_two_workers_share_the_queue(site, api_login):
    app, start_worker = site
    client = app.test_client()
    headers = api_login(client)
    contact = client.post("/api/v1/contact/", headers=headers,
                          json={"first_name": "Two", "last_name": "Workers"}).get_json()["id"]
    for i in range(20):
        client.post("/api/v1/call/", headers=headers,
                    json={"contact_id": contact, "subject": f"call {i}", "minutes": i})
    start_worker()
    start_worker()

    def count():
        with app.app_context():
            db.session.remove()
            return db.session.scalar(select(func.count()).select_from(Activity)) == 20

    wait_for(count, what="20 timeline entries")
    with app.app_context():
        subjects = db.session.scalars(select(Activity.subject)).all()
    assert sorted(subjects) == sorted(f"call {i}" for i in range(20))  # each exactly once


def test_uninstall_downgrades_the_plugin_branch_on_postgres(site):
    from trellis import lifecycle

    app, _ = site
    ext = app.extensions["trellis"]
    with app.app_context():
        lifecycle.disable(ext, "callnotes")
        lifecycle.uninstall(ext, "callnotes")
        assert not inspect(db.engine).has_table("callnotes_call")
        assert inspect(db.engine).has_table("trellis_contact")
        lifecycle.enable(ext, "callnotes")
        assert inspect(db.engine).has_table("callnotes_call")
