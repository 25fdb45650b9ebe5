"""Several `trellis scheduler` processes: one leads, the others wait; a schedule
fires once, and a standby takes over when the leader dies."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from trellis.leader import FileLeader, LeadershipLost, RedisLeader


def test_one_file_leader_per_instance_folder(tmp_path):
    first, second = FileLeader(str(tmp_path)), FileLeader(str(tmp_path))
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


@pytest.mark.redis
def test_a_redis_lease_has_one_holder_and_a_lost_lease_is_noticed(redis_url):
    from redis import Redis

    redis = Redis.from_url(redis_url)
    prefix = f"trellis-test-leader-{os.getpid()}-"
    first, second = RedisLeader(redis, prefix, lease=5), RedisLeader(redis, prefix, lease=5)
    assert first.acquire() and not second.acquire()
    first.renew()
    redis.delete(f"{prefix}scheduler-leader")  # the lease ran out (a frozen leader)
    assert second.acquire()
    with pytest.raises(LeadershipLost):
        first.renew()  # it is someone else's now
    second.release()


@pytest.mark.postgres
@pytest.mark.redis
def test_two_schedulers_fire_a_schedule_once_and_a_standby_takes_over(
        trellis_app_factory, postgres_url, redis_url, tmp_path):
    from tests.test_production_path import TRELLIS, wait_for, worker_env

    app = trellis_app_factory(plugins=["callnotes"], database_url=postgres_url,
                              redis_url=redis_url)
    env = {**worker_env(app, tmp_path), "TRELLIS_SCHEDULER_LEASE": "3"}
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [subprocess.Popen([TRELLIS, "scheduler"], env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT) for log in logs]

    def queued() -> int:
        """How many times the hourly callnotes schedule has fired."""
        with app.app_context():
            return sum(1 for job in app.extensions["trellis"].jobs.queue("default").jobs
                       if job.args and job.args[0] == "callnotes.flag_long_calls")

    try:
        roles = wait_for(lambda: [("Leader" in p.read_text(), "Standby" in p.read_text())
                                  for p in logs] if all(
            "Leader" in p.read_text() or "Standby" in p.read_text() for p in logs) else None,
            what="both schedulers to start")
        assert sorted(roles) == [(False, True), (True, False)], roles
        leader = 0 if roles[0][0] else 1
        wait_for(queued, what="the hourly schedule to fire on start")
        time.sleep(3)
        assert queued() == 1  # fired by the leader only
        procs[leader].send_signal(signal.SIGKILL)  # dies without releasing its lease
        standby = 1 - leader
        wait_for(lambda: "Leader" in logs[standby].read_text(), timeout=20,
                 what="the standby to take over")
        wait_for(lambda: queued() == 2, what="the new leader to schedule")
        assert procs[standby].poll() is None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        with app.app_context():
            app.extensions["trellis"].jobs.queue("default").empty()
