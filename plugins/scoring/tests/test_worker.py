"""The production path: PostgreSQL, Redis and a real ``trellis worker``.

The full recompute runs as one rq job on PostgreSQL (the ``COPY`` staging
path) and gives the hand-computed values of test_scores; then an order
rescores that one customer through the event handler and the incremental job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from trellis.db import db
from trellis.settings import update_settings
from scoring_testkit import add_order, four_customers
from trellis_scoring.models import CustomerScore, ScoreHistory

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

TRELLIS = str(Path(sys.executable).parent / "trellis")


def scores(app) -> dict[int, tuple[float, str]]:
    with app.app_context():
        db.session.remove()
        return {s.contact_id: (float(s.value), s.tier)
                for s in db.session.scalars(select(CustomerScore))}


def wait_for(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_recompute_and_incremental_update_under_a_real_worker(trellis_app_factory, postgres_url,
                                                              redis_url, tmp_path):
    app = trellis_app_factory(plugins=["sales", "scoring"], database_url=postgres_url,
                              redis_url=redis_url)
    ids = four_customers(app)
    cfg = app.config
    env = {**os.environ, "TRELLIS_DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
           "TRELLIS_REDIS_URL": cfg["TRELLIS_REDIS_URL"],
           "TRELLIS_QUEUE_PREFIX": cfg["TRELLIS_QUEUE_PREFIX"],
           "TRELLIS_SECRET_KEY": cfg["SECRET_KEY"],
           "TRELLIS_INSTANCE_PATH": str(tmp_path / "worker"), "TRELLIS_PLUGINS": "sales,scoring",
           "TRELLIS_PLUGIN_STATE_TTL": "0"}
    with app.app_context():
        from trellis.jobs import enqueue

        enqueue("scoring.recompute")
        assert app.extensions["trellis"].jobs.queue("default").count == 1  # on Redis
        assert db.session.query(CustomerScore).count() == 0
    worker = subprocess.Popen([TRELLIS, "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        got = wait_for(lambda: len(scores(app)) == 4 and scores(app), "the full recompute")
        assert got == {ids["A"]: (39.58, "medium"), ids["B"]: (33.33, "medium"),
                       ids["C"]: (0.0, "low"), ids["D"]: (64.58, "high")}
        with app.app_context():
            explanation = db.session.scalar(select(CustomerScore.explanation).where(
                CustomerScore.contact_id == ids["D"]))
        assert explanation == [[2.0, 50.0], [500.0, 100.0], [None, None], [1.0, 8.33]]
        # an order for C: the handler queues C's rescoring, the worker runs it
        with app.app_context():
            update_settings("scoring", {"recompute_on_events": "order.created"})
            add_order(ids["C"], "480", 5)
            db.session.commit()
        started = time.monotonic()
        wait_for(lambda: scores(app)[ids["C"]][0] > 0, "C's incremental rescoring", 30)
        assert time.monotonic() - started < 15
        # C against the last full run's normalisation: the order's timeline entry is
        # 1 interaction, ranked among the run's 1, 2, 3 -> 0 lower -> 0; purchase 480
        # = the run's cap -> 100; loyalty 1 month -> 8.33.
        # 0.25 · 0 + 0.5 · 100 + 0.25 · 8.33 = 52.08
        assert scores(app)[ids["C"]] == (52.08, "medium")
        with app.app_context():
            history = db.session.scalars(select(ScoreHistory.value).where(
                ScoreHistory.contact_id == ids["C"]).order_by(ScoreHistory.id)).all()
        assert [float(v) for v in history] == [0.0, 52.08]
        assert scores(app)[ids["D"]] == (64.58, "high")  # the others untouched
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        with app.app_context():
            app.extensions["trellis"].jobs.queue("default").empty()
