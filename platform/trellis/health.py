"""``GET /health``: public liveness and readiness for load balancers and monitors."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from trellis.db import db

health = Blueprint("trellis_health", __name__)


@health.get("/health")
def check():
    """200 when the database (and Redis, when configured) answer; 503 otherwise."""
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
            body["redis"], ok = f"error: {type(exc).__name__}", False
    if not ok:
        body["status"] = "error"
    return jsonify(body), 200 if ok else 503
