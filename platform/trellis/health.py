"""``GET /health``: public liveness and readiness for load balancers and monitors;
and ``/favicon.ico``, which browsers ask every site for (public, like health)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify, send_from_directory
from sqlalchemy import text

from trellis.db import db

health = Blueprint("trellis_health", __name__)


@health.get("/favicon.ico")
def favicon():
    """The Trellis logo, so a browser's favicon request is not a 404 on every page."""
    return send_from_directory(Path(__file__).parent / "static" / "trellis", "logo.svg",
                               mimetype="image/svg+xml", max_age=86400)


@health.get("/health")
def check():
    """200 while the database answers (503 otherwise).  Redis being down only makes
    the site ``degraded``: the web keeps working and jobs wait in the outbox.
    ``outbox`` counts the jobs and events waiting for delivery, and dead ones."""
    body, ok = {"status": "ok", "database": "ok"}, True
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        body["database"], ok = f"error: {type(exc).__name__}", False
    redis = current_app.extensions["trellis"].jobs.redis
    if redis is not None:
        try:
            redis.ping()
            body["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            body["redis"], body["status"] = f"error: {type(exc).__name__}", "degraded"
    if ok:
        from trellis.outbox import pending_count

        try:
            counts = pending_count()
        except Exception:  # noqa: BLE001 - no schema yet
            counts = None
        finally:
            db.session.remove()
        if counts and (counts["pending"] or counts["dead"]):
            body["outbox"] = counts
    else:
        body["status"] = "error"
    return jsonify(body), 200 if ok else 503
