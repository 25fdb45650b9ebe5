"""Background jobs: rq workers with Redis, in-process without.

Jobs are enqueued **by name** (``"callnotes.summarise"``); the worker resolves
the name in its own app through the single dispatcher :func:`execute`, so a
job survives code moving between modules (rq #1614).  The same job code runs
in both modes:

* ``TRELLIS_REDIS_URL`` set: :func:`enqueue` puts the job on an rq queue and a
  ``trellis worker`` process runs it;
* unset (the embedded default): the job runs in-process right after the
  transaction that enqueued it commits.

Either way a job enqueued inside a transaction is written to the outbox in
that transaction, sent once it commits, and never if it rolls back; a job that
could not be sent (Redis down) or failed in-process is retried by the outbox
relay (:mod:`trellis.outbox`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, has_app_context

if TYPE_CHECKING:  # pragma: no cover
    from redis import Redis

    from trellis.extension import Trellis
    from trellis.specs import JobSpec

log = logging.getLogger(__name__)

#: The import path rq stores for every Trellis job.  Never change it.
DISPATCHER = "trellis.jobs.execute"

#: Seconds between a worker's maintenance runs, which also give the jobs of a worker
#: that died (its heartbeat lapsed, 90 s) back to the queue.
WORKER_MAINTENANCE_SECONDS = 60

_worker_app: Flask | None = None
_pool_pid: int | None = None


class JobError(Exception):
    """A job name is unknown, or its plugin is not enabled."""


class JobRunner:
    """The jobs and schedules of one app, and where their work goes."""

    def __init__(self, trellis: "Trellis") -> None:
        self.trellis = trellis
        self.specs: dict[str, tuple[str, JobSpec]] = {}
        self.schedules: list[tuple[str, Any]] = []
        self._redis: Redis | None = None

    # ------------------------------------------------------------ registration

    def add(self, plugin: str, spec: "JobSpec") -> None:
        if spec.name in self.specs:
            raise JobError(f"job {spec.name!r} of plugin {plugin!r} is already "
                           f"registered by plugin {self.specs[spec.name][0]!r}")
        self.specs[spec.name] = (plugin, spec)

    def remove_plugin(self, plugin: str) -> None:
        self.specs = {n: v for n, v in self.specs.items() if v[0] != plugin}
        self.schedules = [(p, s) for p, s in self.schedules if p != plugin]

    def spec(self, name: str) -> tuple[str, "JobSpec"]:
        try:
            return self.specs[name]
        except KeyError:
            raise JobError(f"no job named {name!r}") from None

    # ------------------------------------------------------------ sending

    @property
    def redis(self) -> "Redis | None":
        url = self.trellis.app.config.get("TRELLIS_REDIS_URL")
        if not url:
            return None
        if self._redis is None:
            from redis import Redis

            self._redis = Redis.from_url(url)
        return self._redis

    def queue(self, name: str = "default") -> Any:
        from rq import Queue

        prefix = self.trellis.app.config["TRELLIS_QUEUE_PREFIX"]
        return Queue(f"{prefix}{name}", connection=self.redis)

    def send(self, name: str, kwargs: dict[str, Any], actor_id: int | None = None,
             job_id: str | None = None) -> Any:
        """Hand a job over now: to rq when Redis is configured (under ``job_id``, so
        handing the same outbox row over twice is one rq job), else run it here.
        Raises when Redis cannot be reached or the in-process job fails, so the
        outbox keeps it for the relay."""
        _plugin, spec = self.spec(name)
        if self.redis is not None:
            from rq import Retry

            return self.queue(spec.queue).enqueue(
                DISPATCHER, name, kwargs, actor_id, job_id=job_id,
                job_timeout=spec.timeout, description=spec.description or name,
                retry=Retry(max=spec.retries) if spec.retries else None,
            )
        return execute(name, kwargs, actor_id)


def enqueue(name: str, **kwargs: Any) -> None:
    """Queue the job ``name`` with JSON-serialisable ``kwargs``.

    With uncommitted writes on ``db.session`` the job is written to the outbox
    in their transaction and sent after they commit (never if they roll back);
    otherwise it goes through the outbox at once.  If Redis is down the job
    waits in the outbox and the relay sends it later (:mod:`trellis.outbox`).
    """
    from trellis.context import current_actor
    from trellis.db import db
    from trellis.session import PENDING_JOBS, dispatch, has_pending_writes

    ext = current_app.extensions["trellis"]
    plugin, _ = ext.jobs.spec(name)
    if not ext.is_enabled(plugin):
        raise JobError(f"job {name!r} belongs to plugin {plugin!r}, which is disabled")
    actor = current_actor()
    job = (name, kwargs, actor.user_id if actor else None)
    session = db.session()
    if has_pending_writes(session):
        session.info.setdefault(PENDING_JOBS, []).append(job)
    else:
        dispatch([], [job])


def set_worker_app(app: Flask) -> None:
    """Tell this process which app to run jobs in (``trellis worker`` does this)."""
    global _worker_app, _pool_pid
    _worker_app = app
    _pool_pid = os.getpid()


def _app() -> Flask:
    global _worker_app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _worker_app is None:
        from trellis.app import create_app

        _worker_app = create_app()
    return _worker_app


def execute(name: str, kwargs: dict[str, Any], actor_id: int | None = None) -> Any:
    """Run the job ``name``: the one function rq ever calls for Trellis.

    Skips (returns ``None``) when the job's plugin has been disabled since the
    job was queued.
    """
    from trellis.context import acting_as
    from trellis.db import db

    global _pool_pid
    app = _app()
    with app.app_context():
        if _pool_pid not in (None, os.getpid()):
            # A forked rq work-horse must not share its parent's connections.
            db.engine.dispose(close=False)
        _pool_pid = os.getpid()
        ext = app.extensions["trellis"]
        plugin, spec = ext.jobs.spec(name)
        if not ext.is_enabled(plugin, fresh=True):
            log.info("skipping job %r: plugin %r is disabled", name, plugin)
            return None
        username = None
        if actor_id is not None:
            user = app.appbuilder.sm.get_user_by_id(actor_id)
            username = user.username if user else None
        with acting_as(actor_id, username, "job"):
            try:
                result = spec.func(**kwargs)
                db.session.commit()
                return result
            except Exception:
                db.session.rollback()
                raise


def cron_jobs(ext: "Trellis") -> list[Any]:
    """rq ``CronJob`` objects for every registered schedule (they also compute
    when a schedule is due, with or without Redis)."""
    from rq.cron import CronJob

    out = []
    for _plugin, sched in ext.jobs.schedules:
        _, job = ext.jobs.spec(sched.job)
        out.append(CronJob(
            queue_name=ext.jobs.queue(job.queue).name if ext.jobs.redis else job.queue,
            func=execute, args=(sched.job, sched.kwargs, None), interval=sched.interval,
            cron=sched.cron, job_timeout=job.timeout, name=sched.job,
        ))
    return out


#: Seconds between two runs of the outbox relay in ``trellis scheduler``.
RELAY_INTERVAL = 5.0


def relay_outbox(app: Flask) -> int:
    """One run of the outbox relay in ``app`` (never raises: the scheduler lives on)."""
    from trellis import outbox

    try:
        with app.app_context():
            return outbox.relay()
    except Exception:  # noqa: BLE001
        log.exception("outbox relay failed; trying again in %s s", RELAY_INTERVAL)
        return 0


def run_relay(app: Flask, stop: Any) -> None:
    """Relay the outbox every :data:`RELAY_INTERVAL` seconds until ``stop`` is set
    (a thread of ``trellis scheduler`` beside rq's cron scheduler)."""
    while not stop.is_set():
        relay_outbox(app)
        stop.wait(RELAY_INTERVAL)


def run_schedules_in_process(app: Flask, stop: Any = None, tick: float = 1.0) -> None:
    """The embedded scheduler: run due schedules here until ``stop`` is set, and
    relay the outbox every :data:`RELAY_INTERVAL` seconds.

    Each job still checks that its plugin is enabled when it runs.
    """
    import time

    from rq.utils import now

    ext = app.extensions["trellis"]
    with app.app_context():
        jobs = cron_jobs(ext)
    last_relay = float("-inf")
    while stop is None or not stop.is_set():
        if time.monotonic() - last_relay >= RELAY_INTERVAL:
            relay_outbox(app)
            last_relay = time.monotonic()
        for job in jobs:
            if job.should_run():
                job.set_enqueue_time(now())
                try:
                    with app.app_context():
                        execute(*job.args)
                except Exception:  # noqa: BLE001 - keep the scheduler alive
                    log.exception("scheduled job %r failed", job.name)
        if stop is not None:
            stop.wait(tick)
        else:
            time.sleep(tick)


def run_cron(ext: Any, stop: Any) -> None:
    """rq's cron scheduler loop, stopping when ``stop`` is set."""
    from rq.cron import CronScheduler

    cron = CronScheduler(connection=ext.jobs.redis)
    for job in cron_jobs(ext):
        cron.register(job.func, queue_name=job.queue_name, args=job.args,
                      interval=job.interval, cron=job.cron, name=job.name,
                      **job.job_options)
    cron.register_birth()
    try:
        while not stop.is_set():
            if cron.enqueue_jobs():
                cron.save()
            cron.heartbeat()
            stop.wait(min(max(cron.calculate_sleep_interval(), 0.2), 1.0))
    finally:
        cron.register_death()
