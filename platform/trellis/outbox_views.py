"""*Admin > Jobs*: what waits in the outbox, what died, and the rq queues.

Admins see jobs and events that could not be delivered yet (Redis down, a
failing in-process job), with their last error and next attempt, and retry or
discard dead ones.  ``GET /api/v1/jobs/status`` gives the same figures for
monitoring: outbox counts, and per rq queue its depth and failed jobs.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect
from flask_appbuilder import action
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext as _

from trellis import outbox
from trellis.datamodel import TrellisSQLAInterface
from trellis.extension import current_trellis
from trellis.models import OutboxItem
from trellis.views import TrellisModelView

RESOURCE = "Jobs"


def queue_status() -> dict[str, Any]:
    """Outbox counts, and per rq queue (with Redis) its depth and failed jobs."""
    status: dict[str, Any] = {"outbox": outbox.pending_count(), "queues": {}}
    jobs = current_trellis().jobs
    if jobs.redis is None:
        status["mode"] = "in-process"
        return status
    status["mode"] = "rq"
    try:
        for name in sorted({spec.queue for _, spec in jobs.specs.values()}):
            queue = jobs.queue(name)
            status["queues"][name] = {"queued": queue.count,
                                      "failed": queue.failed_job_registry.count,
                                      "started": queue.started_job_registry.count}
    except Exception as exc:  # noqa: BLE001 - Redis down: say so
        status["redis"] = f"error: {type(exc).__name__}"
    return status


class OutboxView(TrellisModelView):
    datamodel = TrellisSQLAInterface(OutboxItem)
    class_permission_name = RESOURCE
    list_title = "Jobs and events waiting for delivery"
    list_columns = ["created_at", "kind", "name", "attempts", "claimed_until", "dead_at",
                    "last_error"]
    show_columns = list_columns + ["actor_id", "payload"]
    search_columns = ["kind", "name", "dead_at", "created_at"]
    label_columns = {"claimed_until": "Next attempt", "dead_at": "Gave up at"}
    base_order = ("id", "asc")
    include_route_methods = {"list", "show", "action_post", "action"}

    @action("retry", "Retry now", "Deliver the selected items again?", "fa-redo")
    def retry(self, items: Any):
        items = items if isinstance(items, list) else [items]
        count = outbox.retry([i.id for i in items])
        delivered = outbox.relay()
        flash(_("%(count)s item(s) made due; %(delivered)s delivered now.", count=count,
                delivered=delivered), "info")
        return redirect(self.get_redirect())

    @action("discard", "Discard", "Drop the selected dead items for good?", "fa-trash")
    def discard(self, items: Any):
        items = items if isinstance(items, list) else [items]
        count = outbox.discard([i.id for i in items])
        flash(_("%(count)s dead item(s) discarded (items still being retried are kept).",
                count=count), "info")
        return redirect(self.get_redirect())


class JobsApi(BaseApi):
    """``GET /api/v1/jobs/status``: outbox and rq queue figures for monitoring."""

    resource_name = "jobs"
    class_permission_name = RESOURCE
    method_permission_name = {"status": "read"}
    openapi_spec_tag = "Jobs"

    @expose("/status", methods=["GET"])
    @protect()
    @safe
    @permission_name("status")
    def status(self):
        """Outbox counts (pending, dead) and, with Redis, each queue's depth and failures.
        ---
        get:
          responses:
            200: {description: "{mode, outbox: {pending, dead}, queues: {name: {queued, failed, started}}}"}
        """
        return self.response(200, **queue_status())
