"""Shared fixtures of the integrations tests: a real local HTTP receiver, and a
real ``trellis worker`` for the PostgreSQL + Redis tests.  Not a conftest.py (plugin
test folders are not packages, and two conftest modules would clash): test modules
import what they use from here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

TRELLIS = str(Path(sys.executable).parent / "trellis")


class Receiver:
    """A local HTTP server that records requests and answers with the queued
    status codes (then ``default``)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.codes: list[int] = []
        self.default = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    code = receiver.codes.pop(0) if receiver.codes else receiver.default
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "code": code})
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": code < 300}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def allow_loopback(app: Any, **integrations: Any) -> None:
    """Let outgoing calls reach 127.0.0.1 (refused by default) and set plugin settings."""
    from trellis.settings import update_settings

    with app.app_context():
        update_settings("core", {"allowed_private_networks": "127.0.0.0/8"})
        if integrations:
            update_settings("integrations", integrations)


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def worker_site(trellis_app_factory, postgres_url, redis_url, tmp_path):
    """An app on PostgreSQL + Redis and a way to start real ``trellis worker``s."""
    app = trellis_app_factory(plugins=["integrations"], database_url=postgres_url,
                              redis_url=redis_url)
    procs: list[subprocess.Popen] = []

    def start_worker() -> subprocess.Popen:
        cfg = app.config
        env = {**os.environ,
               "TRELLIS_DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
               "TRELLIS_REDIS_URL": cfg["TRELLIS_REDIS_URL"],
               "TRELLIS_QUEUE_PREFIX": cfg["TRELLIS_QUEUE_PREFIX"],
               "TRELLIS_SECRET_KEY": cfg["SECRET_KEY"],
               "TRELLIS_INSTANCE_PATH": str(tmp_path / "worker"),
               "TRELLIS_PLUGINS": "integrations",
               "TRELLIS_PLUGIN_STATE_TTL": "0"}
        proc = subprocess.Popen([TRELLIS, "worker"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return proc

    yield app, start_worker
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    with app.app_context():
        jobs = app.extensions["trellis"].jobs
        for queue in {spec.queue for _, spec in jobs.specs.values()}:
            jobs.queue(queue).empty()
