"""Acceptance: a real campaign to 1,000+ contacts on PostgreSQL + Redis, sent by
real ``trellis worker`` processes through a real SMTP server (aiosmtpd); the
worker is killed (SIGKILL, its whole process group) mid-send and a new one
started: every eligible contact gets exactly one personalised message, the
unsubscribed ones none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from trellis import consent
from trellis.db import db, utcnow
from trellis.models import Contact
from trellis_marketing.models import Campaign, Message

TRELLIS = str(Path(sys.executable).parent / "trellis")
ELIGIBLE, UNSUBSCRIBED, OUTSIDE = 1000, 60, 40


def wait_for(predicate, timeout=120.0, what="condition", step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (rq's work-horse runs in its own session)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.mark.postgres
@pytest.mark.redis
def test_campaign_to_1000_contacts_survives_a_killed_worker(trellis_app_factory, postgres_url,
                                                            redis_url, smtp_sink, api_login,
                                                            tmp_path):
    app = trellis_app_factory(plugins=["marketing"], database_url=postgres_url,
                              redis_url=redis_url)
    with app.app_context():
        from trellis.settings import update_settings

        update_settings("marketing", {"send_rate_per_minute": 100000})
        now = utcnow()
        rows = ([{"first_name": f"Fn{i:04d}", "last_name": "In", "email": f"p{i:04d}@example.org",
                  "created_on": now, "updated_on": now}
                 for i in range(ELIGIBLE + UNSUBSCRIBED)]
                + [{"first_name": f"Out{i}", "last_name": "Side", "email": f"o{i}@other.net",
                    "created_on": now, "updated_on": now} for i in range(OUTSIDE)])
        db.session.execute(insert(Contact), rows)
        db.session.commit()
        unsubscribed = db.session.scalars(select(Contact.id).where(
            Contact.email.like("p%@example.org")).order_by(Contact.id)
            .limit(UNSUBSCRIBED)).all()
        for cid in unsubscribed:
            consent.record(db.session, cid, "email", "marketing", False, source="test")
        db.session.commit()
        expected = sorted(db.session.scalars(select(Contact.email).where(
            Contact.email.like("p%@example.org"), Contact.id.not_in(unsubscribed))).all())
        first_names = dict(db.session.execute(select(Contact.email, Contact.first_name)).all())
    assert len(expected) == ELIGIBLE

    client = app.test_client()
    headers = api_login(client)
    tid = client.post("/api/v1/email_template/", headers=headers, json={
        "name": "Hello", "subject": "Hello {{ contact.first_name }}",
        "text_body": "Dear {{ contact.first_name }}, our news."}).get_json()["id"]
    sid = client.post("/api/v1/segment/", headers=headers, json={
        "name": "example.org", "rules": {"type": "field", "field": "email", "op": "ends_with",
                                         "value": "@example.org"}}).get_json()["id"]
    cid = client.post("/api/v1/campaign/", headers=headers, json={
        "name": "Big", "segment_id": sid, "template_id": tid}).get_json()["id"]
    started = client.post(f"/api/v1/campaign/{cid}/send", headers=headers)
    assert started.get_json() == {"started": True, "queued": ELIGIBLE}

    cfg = app.config
    env = {**os.environ, "TRELLIS_DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
           "TRELLIS_REDIS_URL": cfg["TRELLIS_REDIS_URL"],
           "TRELLIS_QUEUE_PREFIX": cfg["TRELLIS_QUEUE_PREFIX"],
           "TRELLIS_SECRET_KEY": cfg["SECRET_KEY"],
           "TRELLIS_INSTANCE_PATH": str(tmp_path / "worker"), "TRELLIS_PLUGINS": "marketing",
           "TRELLIS_PLUGIN_STATE_TTL": "0", "TRELLIS_SMTP_HOST": "127.0.0.1",
           "TRELLIS_SMTP_PORT": str(smtp_sink.port)}
    log = open(tmp_path / "worker.log", "w")
    workers = []

    def start_worker():
        proc = subprocess.Popen([TRELLIS, "worker"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        workers.append(proc)
        return proc

    def statuses():
        with app.app_context():
            db.session.remove()
            return dict(db.session.execute(select(Message.status, func.count())
                                           .where(Message.campaign_id == cid)
                                           .group_by(Message.status)).all())

    try:
        began = time.monotonic()
        first = start_worker()
        wait_for(lambda: len(smtp_sink.to()) >= 300, what="300 messages sent")
        first_phase = time.monotonic() - began
        for pid in [*children(first.pid), first.pid]:  # the work-horse and the worker
            os.kill(pid, signal.SIGKILL)
        first.wait(10)
        killed_at = len(smtp_sink.to())
        time.sleep(0.5)
        assert len(smtp_sink.to()) == killed_at  # nothing is sending any more
        assert killed_at < ELIGIBLE
        mid = statuses()
        assert mid.get("queued", 0) > 0, mid

        restarted = time.monotonic()
        start_worker()
        with app.app_context():
            from trellis.jobs import enqueue

            enqueue("marketing.recover", lease_seconds=0)
            db.session.commit()
        wait_for(lambda: statuses() == {"sent": ELIGIBLE}, what="every message sent")

        def finished():
            with app.app_context():
                db.session.remove()
                return db.session.get(Campaign, cid).status == "sent"

        wait_for(finished, timeout=30, what="the campaign marked sent")
        second_phase = time.monotonic() - restarted
    finally:
        for proc in workers:
            if proc.poll() is None:
                for pid in children(proc.pid):
                    os.kill(pid, signal.SIGKILL)
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        with app.app_context():
            app.extensions["trellis"].jobs.queue("default").empty()

    received = smtp_sink.to()
    counts = Counter(received)
    assert [a for a, n in counts.items() if n > 1] == []  # no duplicates
    assert sorted(received) == expected  # no losses, nobody unsubscribed or outside
    for rcpts, msg in smtp_sink.messages:
        name = first_names[rcpts[0]]
        assert msg["Subject"] == f"Hello {name}"
        assert msg.get_body(("plain",)).get_content().startswith(f"Dear {name},")
        assert msg["List-Unsubscribe"]
    print(f"killed after {killed_at} of {ELIGIBLE} messages ({first_phase:.1f} s from the "
          f"worker's start); mid-send statuses {mid}; the restarted worker sent the other "
          f"{ELIGIBLE - killed_at} in {second_phase:.1f} s (including its start-up)")
