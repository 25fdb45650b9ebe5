"""One active ``trellis scheduler`` per site, however many are started.

Several schedulers (one per host, for failover) must not fire every schedule
several times.  Each one tries to become the **leader** before it schedules
anything: with Redis, by taking a Redis lock (``<prefix>scheduler-leader``)
that expires after ``TRELLIS_SCHEDULER_LEASE`` seconds (15) unless the leader renews it every
third of that; without Redis, by an exclusive file lock in the
instance folder.  The others wait as standbys and try again every few seconds,
so when the leader dies a standby takes over within one lease.  A leader that
cannot renew its lease (Redis gone, the process frozen) stops scheduling and
exits, so two leaders never run at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

#: Seconds the leader's lock lasts without renewal (``TRELLIS_SCHEDULER_LEASE``).
LEASE = 15.0


def renew_every(lease: float) -> float:
    """Seconds between renewals (and between a standby's attempts): a third of the lease."""
    return max(lease / 3, 0.5)


class LeadershipLost(RuntimeError):
    """The leader could not renew its lease; it must stop scheduling."""


class RedisLeader:
    """Leadership through a Redis lock with a lease."""

    def __init__(self, redis: Any, prefix: str, lease: float = LEASE) -> None:
        self.lease = lease
        self.lock = redis.lock(f"{prefix}scheduler-leader", timeout=lease,
                               thread_local=False)

    def acquire(self) -> bool:
        return bool(self.lock.acquire(blocking=False))

    def renew(self) -> None:
        try:
            self.lock.reacquire()  # back to a full lease; fails if it is no longer ours
        except Exception as exc:  # noqa: BLE001 - LockNotOwnedError, connection errors
            raise LeadershipLost(str(exc)) from exc

    def release(self) -> None:
        try:
            self.lock.release()
        except Exception:  # noqa: BLE001 - expired already
            pass


class FileLeader:
    """Leadership through an exclusive lock on a file (one host, no Redis)."""

    lease = LEASE

    def __init__(self, folder: str) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.path = os.path.join(folder, "scheduler.lock")
        self.fh: Any = None

    def acquire(self) -> bool:
        fh = open(self.path, "a+")  # noqa: SIM115 - held for as long as we lead
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self.fh = fh
        return True

    def renew(self) -> None:
        """A file lock lasts while the process lives: nothing to renew."""

    def release(self) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def leader_for(app: Any) -> RedisLeader | FileLeader:
    ext = app.extensions["trellis"]
    if ext.jobs.redis is not None:
        return RedisLeader(ext.jobs.redis, app.config["TRELLIS_QUEUE_PREFIX"],
                           float(app.config.get("TRELLIS_SCHEDULER_LEASE") or LEASE))
    return FileLeader(app.config["TRELLIS_INSTANCE_PATH"])


def run_as_leader(leader: Any, work: Callable[[threading.Event], None],
                  stop: threading.Event | None = None,
                  on_standby: Callable[[], None] | None = None) -> None:
    """Wait to become the leader, then run ``work(stop_event)`` while renewing the
    lease in a thread.  Losing the lease sets the event and raises
    :class:`LeadershipLost` once ``work`` returns."""
    stop = stop or threading.Event()
    every = renew_every(leader.lease)
    announced = False
    while not leader.acquire():
        if not announced:
            log.info("another scheduler leads; waiting as a standby")
            if on_standby:
                on_standby()
            announced = True
        if stop.wait(every):
            return
    log.info("this scheduler is the leader")
    lost = threading.Event()

    def keep_lease() -> None:
        while not stop.wait(every):
            try:
                leader.renew()
            except LeadershipLost as exc:
                log.error("lost the scheduler lease (%s): stopping", exc)
                lost.set()
                stop.set()
                return

    renewer = threading.Thread(target=keep_lease, name="scheduler-lease", daemon=True)
    renewer.start()
    try:
        work(stop)
    finally:
        stop.set()
        leader.release()
    if lost.is_set():
        raise LeadershipLost("the scheduler lease was lost")
