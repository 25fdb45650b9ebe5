"""The transactional outbox: work is written with the change, delivered after the
commit, kept through crashes, failures and a Redis outage, and delivered once
the relay can; dead items wait for an admin."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from trellis import hookimpl, outbox
from trellis.db import db, utcnow
from trellis.jobs import enqueue
from trellis.models import Activity, Contact, OutboxItem
from trellis.specs import EventHandler, JobSpec, Manifest
from trellis.testing import free_port

RUNS: list[str] = []
FAILURES = {"left": 0}


def touch(marker: str) -> None:
    """A job that fails while ``FAILURES["left"]`` > 0, else records its run."""
    if FAILURES["left"] > 0:
        FAILURES["left"] -= 1
        raise RuntimeError("not yet")
    RUNS.append(marker)


class Work:
    @hookimpl
    def trellis_manifest(self):
        return Manifest(label="Outbox test")

    @hookimpl
    def trellis_jobs(self):
        return [JobSpec("work.touch", touch)]

    @hookimpl
    def trellis_event_handlers(self):
        return [EventHandler("contact.created", lambda e: RUNS.append(f"seen {e.record_id}"))]


@pytest.fixture
def site(trellis_app_factory):
    RUNS.clear()
    FAILURES["left"] = 0
    return trellis_app_factory(extra_plugins=[("work", Work())])


def rows():
    db.session.remove()
    return db.session.execute(select(OutboxItem.kind, OutboxItem.name, OutboxItem.attempts,
                                     OutboxItem.dead_at.is_not(None))
                              .order_by(OutboxItem.id)).all()


def test_work_is_written_with_the_change_and_removed_once_delivered(site):
    with site.app_context():
        contact = Contact(first_name="Ana", last_name="A")
        db.session.add(contact)
        enqueue("work.touch", marker="one")
        db.session.flush()
        assert RUNS == []
        seen = []
        original = outbox.deliver

        def spy(items):
            # the rows exist, committed with the contact, when delivery starts
            with db.engine.connect() as conn:
                seen.append(sorted(conn.execute(select(OutboxItem.kind, OutboxItem.name))))
            return original(items)

        outbox.deliver = spy
        try:
            db.session.commit()
        finally:
            outbox.deliver = original
        assert seen == [[("event", "contact.created"), ("job", "work.touch")]]
        assert RUNS == ["one", f"seen {contact.id}"]
        assert rows() == []
        # a rolled-back change leaves nothing behind
        db.session.add(Contact(first_name="Bo", last_name="B"))
        enqueue("work.touch", marker="never")
        db.session.rollback()
        db.session.commit()
        assert rows() == [] and "never" not in RUNS


def test_a_failing_job_is_retried_with_back_off_then_dead_until_an_admin_retries(site):
    FAILURES["left"] = outbox.MAX_ATTEMPTS
    with site.app_context():
        db.session.add(Contact(first_name="Ana", last_name="A"))
        enqueue("work.touch", marker="late")
        db.session.commit()  # the in-process run fails: kept for the relay
        assert rows() == [("job", "work.touch", 1, False)]
        assert outbox.relay() == 0  # not due yet (back-off)
        for attempt in range(2, outbox.MAX_ATTEMPTS + 1):
            db.session.execute(update(OutboxItem).values(claimed_until=utcnow()))
            db.session.commit()
            assert outbox.relay() == 0
            assert rows() == [("job", "work.touch", attempt, attempt == outbox.MAX_ATTEMPTS)]
        assert outbox.pending_count() == {"pending": 0, "dead": 1}
        db.session.execute(update(OutboxItem).values(claimed_until=None))
        db.session.commit()
        assert outbox.relay() == 0  # dead items wait for an admin
        item_id = db.session.scalar(select(OutboxItem.id))
        assert outbox.retry([item_id]) == 1
        assert outbox.relay() == 1
        assert RUNS.count("late") == 1 and rows() == []


def test_work_of_a_process_that_died_after_the_commit_is_delivered_once(site, monkeypatch):
    with site.app_context():
        monkeypatch.setattr(outbox, "deliver", lambda items: 0)  # the process "dies"
        contact = Contact(first_name="Ana", last_name="A")
        db.session.add(contact)
        enqueue("work.touch", marker="orphan")
        db.session.commit()
        monkeypatch.undo()
        assert RUNS == []
        assert outbox.relay() == 0  # still claimed by the dead process
        db.session.execute(update(OutboxItem).values(
            claimed_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert outbox.relay() == 2
        assert sorted(RUNS) == ["orphan", f"seen {contact.id}"]
        assert outbox.relay() == 0 and rows() == []


def test_admin_sees_dead_items_and_monitoring_gets_queue_figures(site, web_login, api_login,
                                                                 make_user):
    from trellis.testing import csrf_token

    FAILURES["left"] = 100
    with site.app_context():
        enqueue("work.touch", marker="stuck")
        db.session.execute(update(OutboxItem).values(attempts=outbox.MAX_ATTEMPTS - 1,
                                                     claimed_until=utcnow()))
        db.session.commit()
        outbox.relay()
        item_id = db.session.scalar(select(OutboxItem.id))
    client = site.test_client()
    status = client.get("/api/v1/jobs/status", headers=api_login(client)).get_json()
    assert status["outbox"] == {"pending": 0, "dead": 1} and status["mode"] == "in-process"
    assert client.get("/health").get_json()["outbox"] == {"pending": 0, "dead": 1}
    make_user(site, "clerk", ["CRM User"])
    assert client.get("/api/v1/jobs/status",
                      headers=api_login(client, "clerk", "pw-123456")).status_code == 403
    web = site.test_client()
    web_login(web)
    page = web.get("/outboxview/list/").get_data(as_text=True)
    assert "work.touch" in page and "RuntimeError: not yet" in page
    FAILURES["left"] = 0
    done = web.post("/outboxview/action_post", data={"action": "retry", "rowid": str(item_id),
                                                     "csrf_token": csrf_token(page)})
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    assert RUNS == ["stuck"]
    with site.app_context():
        assert rows() == []


# ------------------------------------------------------------------ a real Redis outage


class PrivateRedis:
    """A redis-server of this test's own, to stop and start (the shared one stays up)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("redis-server is not installed (CI=true: this test needs it)")
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.mark.postgres
@pytest.mark.redis
def test_web_keeps_working_while_redis_is_down_and_work_goes_out_when_it_is_back(
        trellis_app_factory, postgres_url, private_redis, api_login, tmp_path):
    from tests.test_production_path import TRELLIS, wait_for, worker_env

    app = trellis_app_factory(plugins=["callnotes"], database_url=postgres_url,
                              redis_url=private_redis.url)
    client = app.test_client()
    headers = api_login(client)
    contact = client.post("/api/v1/contact/", headers=headers,
                          json={"first_name": "Wen", "last_name": "Zhang"}).get_json()["id"]
    private_redis.stop()
    # Redis is down: the write still succeeds, its background handler waits in the outbox
    response = client.post("/api/v1/call/", headers=headers,
                           json={"contact_id": contact, "subject": "Outage", "minutes": 5})
    assert response.status_code == 201, response.get_json()
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "degraded"
    with app.app_context():
        assert [(k, n) for k, n, _, _ in rows()] == [("job", "core.run_event_handler")]
        assert outbox.relay() == 0  # still down... claimed by the request, not due yet
        db.session.execute(update(OutboxItem).values(claimed_until=utcnow()))
        db.session.commit()
        assert rows()[0][2] == 1  # the request's own attempt failed
        assert outbox.relay() == 0  # the relay tries, fails, backs off
        assert rows()[0][2] == 2
    private_redis.start()  # Redis is back (empty: it keeps nothing on disk)
    with app.app_context():
        db.session.execute(update(OutboxItem).values(claimed_until=utcnow()))
        db.session.commit()
        assert outbox.relay() == 1
        assert rows() == []
        assert app.extensions["trellis"].jobs.queue("default").count == 1
    worker = subprocess.Popen([TRELLIS, "worker", "--burst"], env=worker_env(app, tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert worker.wait(60) == 0, worker.stdout.read()

    def timeline():
        with app.app_context():
            db.session.remove()
            return db.session.scalars(select(Activity).where(
                Activity.contact_id == contact, Activity.type == "call")).all()

    activities = wait_for(timeline, what="the handler to run")
    assert [a.subject for a in activities] == ["Outage"]  # exactly once
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxItem)) == 0
