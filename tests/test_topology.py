"""The production topology on loopback: gunicorn with two workers, two `trellis
worker` processes and two `trellis scheduler` processes on PostgreSQL and Redis.
Work queued through the web is done by the workers, a schedule fires and runs
once across all of them, and disabling or enabling a plugin reaches every web
worker without a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from trellis.db import db
from trellis.models import Activity
from trellis.testing import _unavailable, free_port

from tests.test_production_path import TRELLIS, wait_for, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

GUNICORN = Path(sys.executable).parent / "gunicorn"


def http(method: str, url: str, body: dict | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Connection": "close", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_gunicorn_workers_rq_workers_and_schedulers_work_together(
        trellis_app_factory, postgres_url, redis_url, tmp_path):
    if not GUNICORN.exists():
        _unavailable("gunicorn (pip install '.[test]')", FileNotFoundError(GUNICORN))
    from rq.registry import FinishedJobRegistry

    app = trellis_app_factory(plugins=["callnotes"], database_url=postgres_url,
                              redis_url=redis_url)
    env = {**worker_env(app, tmp_path), "TRELLIS_SCHEDULER_LEASE": "3",
           "TRELLIS_LOGIN_RATE_LIMIT": "1000 per minute", "TRELLIS_LOG_LEVEL": "WARNING"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, *command: str) -> None:
        procs.append(subprocess.Popen(command, env=env, stdout=(logs / name).open("w"),
                                      stderr=subprocess.STDOUT))

    try:
        start("web", str(GUNICORN), "--workers", "2", "--bind", f"127.0.0.1:{port}",
              "--timeout", "60", "trellis.app:create_app()")
        for n in (1, 2):
            start(f"worker{n}", TRELLIS, "worker")
            start(f"scheduler{n}", TRELLIS, "scheduler")

        def healthy():
            try:
                return http("GET", f"{base}/health")[0] == 200
            except OSError:
                return False

        wait_for(healthy, 60, "gunicorn to answer")
        status, token = http("POST", f"{base}/api/v1/security/login", {
            "username": "admin", "password": "admin-password", "provider": "db"})
        assert status == 200, token
        auth = {"Authorization": f"Bearer {token['access_token']}"}

        # work queued through the web is done by a worker
        status, contact = http("POST", f"{base}/api/v1/contact/",
                               {"first_name": "Topo", "last_name": "Logy"}, auth)
        assert status == 201, contact
        status, call = http("POST", f"{base}/api/v1/call/",
                            {"contact_id": contact["id"], "subject": "Setup", "minutes": 5},
                            auth)
        assert status == 201, call

        def timeline():
            with app.app_context():
                db.session.remove()
                return db.session.scalars(select(Activity.subject).where(
                    Activity.contact_id == contact["id"], Activity.type == "call")).all()

        assert wait_for(timeline, 60, "a worker to run the call handler") == ["Setup"]

        # the hourly schedule: fired by the leading scheduler only, run by one worker
        def runs() -> int:
            with app.app_context():
                queue = app.extensions["trellis"].jobs.queue("default")
                registry = FinishedJobRegistry(queue=queue)
                jobs = [queue.fetch_job(i) for i in registry.get_job_ids()]
                return sum(1 for j in jobs if j and j.args and
                           j.args[0] == "callnotes.flag_long_calls")

        wait_for(runs, 60, "the schedule to fire and run")
        time.sleep(6)  # two lease periods: a second firing would have happened by now
        assert runs() == 1
        texts = [(logs / f"scheduler{n}").read_text() for n in (1, 2)]
        assert sorted("Leader" in t for t in texts) == [False, True], texts

        # disabling a plugin takes its API away on every web worker, enabling brings it back
        def statuses() -> set[int]:
            return {http("GET", f"{base}/api/v1/call/", headers=auth)[0] for _ in range(12)}

        assert statuses() == {200}
        plugin_cli = [TRELLIS, "plugins"]
        subprocess.run([*plugin_cli, "disable", "callnotes"], env=env, check=True,
                       capture_output=True)
        assert statuses() == {404}
        subprocess.run([*plugin_cli, "enable", "callnotes"], env=env, check=True,
                       capture_output=True)
        assert statuses() == {200}
        assert all(p.poll() is None for p in procs), {
            name.name: name.read_text()[-500:] for name in logs.iterdir()}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        with app.app_context():
            app.extensions["trellis"].jobs.queue("default").empty()
