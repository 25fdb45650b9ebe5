"""Webhooks out: every core or plugin event, signed, delivered with retries.

Fan-out: a foreground handler for ``"*"`` looks up the active endpoints whose
``events`` patterns match (``contact.created``, ``deal.*``, ``*``) and adds one
:class:`~trellis_integrations.models.WebhookDelivery` per endpoint and event
(unique, so the same event never queues twice), then enqueues
``integrations.deliver`` for each.

Delivery (the ``integrations.deliver`` job, on rq): the delivery row is
claimed with a conditional ``UPDATE`` (so two workers, or a retried job, never
send it twice), the request goes through :mod:`trellis.netguard`, and the
answer is logged as a :class:`~trellis_integrations.models.WebhookAttempt`.
A 2xx answer marks it ``delivered``.  Anything else schedules a retry after
``webhook_retry_base_seconds × 2^(attempt-1)`` (capped at 6 hours); after
``webhook_max_attempts`` attempts it is ``dead`` (dead-letter), where an admin
can redeliver it.  The periodic job ``integrations.retry_deliveries`` enqueues
the retries that are due and takes back deliveries whose worker died.

The request (``kind = "webhook"``)::

    POST <url>
    Content-Type: application/json
    X-Trellis-Event: contact.created
    X-Trellis-Event-Id: 0f3c…            (the same on every retry: dedupe on it)
    X-Trellis-Delivery: 42
    X-Trellis-Timestamp: 1767225600      (Unix seconds of this attempt)
    X-Trellis-Signature: v1=<hex>[, v1=<hex>]

    {"id": "0f3c…", "type": "contact.created", "schema_version": 1,
     "occurred_at": "…", "plugin": "core", "model": "contact", "record_id": 7,
     "actor_id": 1, "data": {…}, "changes": {…}}

The signature is ``HMAC-SHA256(secret, f"{timestamp}.{body}")`` in hex.  A
receiver recomputes it over the raw body and rejects the request unless one
``v1`` value matches and the timestamp is recent (:func:`verify`, 5 minutes),
which stops replays.  After a secret rotation the old secret stays valid for
``secret_grace_hours``, and both signatures are sent meanwhile.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import timedelta
from typing import Any, Mapping

from marshmallow import Schema, fields, validate
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from trellis import netguard
from trellis.db import db, utcnow
from trellis.jobs import enqueue
from trellis.settings import get_settings

from trellis_integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

PLUGIN = "integrations"
SCHEMA_VERSION = 1
DELIVER_JOB = "integrations.deliver"
RETRY_JOB = "integrations.retry_deliveries"
#: Seconds a claimed delivery may stay "sending" before the sweep takes it back.
LEASE_SECONDS = 300
MAX_BACKOFF = 6 * 3600
TOLERANCE = 300
HEADERS = ("X-Trellis-Event", "X-Trellis-Event-Id", "X-Trellis-Delivery",
           "X-Trellis-Timestamp", "X-Trellis-Signature")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# ------------------------------------------------------------------ signing


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], timestamp: int, body: str | bytes) -> str:
    return ", ".join(f"v1={sign(s, timestamp, body)}" for s in secrets_)


def verify(secret: str, headers: Mapping[str, str], body: bytes | str,
           tolerance: int = TOLERANCE, now: float | None = None) -> bool:
    """Whether a request carries a valid, recent signature made with ``secret``
    (for receivers; the inbound webhooks use it too)."""
    timestamp = headers.get("X-Trellis-Timestamp", "")
    if not timestamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    given = [part.strip()[3:] for part in headers.get("X-Trellis-Signature", "").split(",")
             if part.strip().startswith("v1=")]
    return any(hmac.compare_digest(expected, g) for g in given)


def live_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The current secret, and the previous one during its grace period."""
    out = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and _aware(expires) > utcnow():
        out.append(endpoint.previous_secret)
    return out


def _aware(value: Any) -> Any:
    from datetime import timezone

    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one stays valid for ``secret_grace_hours``."""
    hours = get_settings(PLUGIN)["secret_grace_hours"]
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utcnow() + timedelta(hours=hours)
    endpoint.secret = new_secret()
    return endpoint.secret


# ------------------------------------------------------------------ model rules


def endpoint_before_save(session: Any, endpoint: WebhookEndpoint, action: str) -> None:
    if action == "created" and not endpoint.secret:
        endpoint.secret = new_secret()
    endpoint.kind = endpoint.kind or "webhook"
    if endpoint.active is None:
        endpoint.active = True
    endpoint.events = ", ".join(p.strip() for p in (endpoint.events or "").split(",")
                                if p.strip()) or "*"


def endpoint_validate(endpoint: WebhookEndpoint) -> dict[str, list[str]]:
    from trellis_integrations.connectors import check_template, endpoint_kinds

    errors: dict[str, list[str]] = {}
    try:
        netguard.literal_check(endpoint.url or "")
    except netguard.BlockedTarget as exc:
        errors["url"] = [str(exc)]
    kinds = endpoint_kinds()
    if endpoint.kind not in kinds:
        errors["kind"] = [f"Choose one of {', '.join(kinds)}."]
    if endpoint.template:
        problems = check_template(endpoint.template)
        if problems:
            errors["template"] = problems
    if not (endpoint.name or "").strip():
        errors["name"] = ["Must not be empty."]
    return errors


# ------------------------------------------------------------------ fan-out


def envelope(evt: Any) -> dict[str, Any]:
    return {"id": evt.id, "type": evt.name, "schema_version": SCHEMA_VERSION,
            "occurred_at": evt.occurred_at, "plugin": evt.plugin, "model": evt.model,
            "record_id": evt.record_id, "actor_id": evt.actor_id, "data": evt.data,
            "changes": evt.changes}


def _matches(patterns: str, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p.strip()) for p in patterns.split(",") if p.strip())


def fan_out(evt: Any) -> None:
    """Handler for every event: queue a delivery per subscribed endpoint."""
    from trellis_integrations.connectors import chat_body

    endpoints = [e for e in db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))
        if _matches(e.events, evt.name)]
    if not endpoints:
        return
    body = envelope(evt)
    ids = []
    for endpoint in endpoints:
        if endpoint.kind in ("slack", "dingtalk", "wecom", "custom"):
            try:
                payload = chat_body(endpoint.kind, endpoint.template, body)
            except Exception as exc:  # noqa: BLE001 - a broken template: log, skip
                log.warning("template of webhook %s failed: %s", endpoint.id, exc)
                continue
        else:
            payload = json.dumps(body, default=str, separators=(",", ":"))
        delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=evt.id,
                                   event_name=evt.name, payload=payload, status="pending",
                                   next_attempt_at=utcnow())
        try:
            with db.session.begin_nested():
                db.session.add(delivery)
        except IntegrityError:  # the same event reached us twice
            continue
        ids.append(delivery)
    db.session.commit()
    for delivery in ids:
        enqueue(DELIVER_JOB, delivery_id=delivery.id)


# ------------------------------------------------------------------ delivery


def backoff(attempt: int, base: int) -> int:
    """Seconds before attempt ``attempt + 1``: base, 2×base, 4×base, … (capped)."""
    return int(min(MAX_BACKOFF, base * 2 ** max(0, attempt - 1)))


def _send(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str]:
    from trellis_integrations.connectors import connectors

    timeout = float(get_settings(PLUGIN)["webhook_timeout_seconds"])
    plugin_kinds = connectors()
    if endpoint.kind in plugin_kinds:
        _, spec = plugin_kinds[endpoint.kind]
        code = spec.send(endpoint, json.loads(delivery.payload))
        return (code if code is not None else 200), ""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Trellis-Event": delivery.event_name,
        "X-Trellis-Event-Id": delivery.event_id,
        "X-Trellis-Delivery": str(delivery.id),
        "X-Trellis-Timestamp": str(timestamp),
        "X-Trellis-Signature": signature_header(live_secrets(endpoint), timestamp,
                                                delivery.payload),
    }
    answer = netguard.request("POST", endpoint.url, body=delivery.payload, headers=headers,
                              timeout=timeout)
    return answer.status, answer.text()[:1000]


def deliver(delivery_id: int) -> dict[str, Any]:
    """Job: one attempt at one delivery (claimed first: idempotent)."""
    now = utcnow()
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id,
               WebhookDelivery.status.in_(("pending", "retrying")),
               or_(WebhookDelivery.next_attempt_at.is_(None),
                   WebhookDelivery.next_attempt_at <= now))
        .values(status="sending", attempts=WebhookDelivery.attempts + 1,
                next_attempt_at=now + timedelta(seconds=LEASE_SECONDS)))
    db.session.commit()
    if not claimed.rowcount:
        return {"delivery_id": delivery_id, "skipped": True}
    delivery = db.session.get(WebhookDelivery, delivery_id)
    endpoint = delivery.endpoint
    settings = get_settings(PLUGIN)
    started = time.monotonic()
    code: int | None = None
    error = response = ""
    try:
        if not endpoint.active:
            raise RuntimeError("the endpoint is switched off")
        code, response = _send(endpoint, delivery)
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except netguard.BlockedTarget as exc:
        error = f"Refused: {exc}"
    except Exception as exc:  # noqa: BLE001 - any transport failure is a failed attempt
        error = f"{type(exc).__name__}: {exc}"[:500]
    db.session.add(WebhookAttempt(delivery_id=delivery.id, status_code=code,
                                  error=error or None, response=response or None,
                                  duration_ms=int((time.monotonic() - started) * 1000)))
    delivery.last_status_code, delivery.last_error = code, error or None
    if not error:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = \
            "delivered", utcnow(), None
    elif delivery.attempts >= settings["webhook_max_attempts"]:
        delivery.status, delivery.next_attempt_at = "dead", None
    else:
        delivery.status = "retrying"
        delivery.next_attempt_at = utcnow() + timedelta(
            seconds=backoff(delivery.attempts, settings["webhook_retry_base_seconds"]))
    db.session.commit()
    return {"delivery_id": delivery.id, "status": delivery.status, "code": code}


def retry_deliveries(limit: int = 500) -> dict[str, int]:
    """Job (every few seconds): take back deliveries whose worker died, and
    enqueue the retries that are due."""
    now = utcnow()
    taken_back = db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.status == "sending",
                                      WebhookDelivery.next_attempt_at <= now)
        .values(status="retrying")).rowcount
    db.session.commit()
    due = db.session.scalars(
        select(WebhookDelivery.id).where(WebhookDelivery.status.in_(("pending", "retrying")),
                                         WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at).limit(limit)).all()
    db.session.rollback()
    for delivery_id in due:
        enqueue(DELIVER_JOB, delivery_id=delivery_id)
    return {"enqueued": len(due), "taken_back": taken_back}


def redeliver(delivery: WebhookDelivery) -> None:
    """Send a delivered or dead delivery again (same event id and body; the
    attempts start over).  The caller commits; the job is sent after the commit."""
    if delivery.status not in ("delivered", "dead"):
        raise ValueError("Only a delivered or dead-lettered delivery can be sent again.")
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.delivered_at = utcnow(), None
    db.session.flush()
    enqueue(DELIVER_JOB, delivery_id=delivery.id)


# ------------------------------------------------------------------ the automation action


class CallWebhookParams(Schema):
    endpoint_id = fields.Integer(required=True, metadata={
        "description": "a webhook endpoint set up by an admin (its URL, secret, kind)"})
    event = fields.String(load_default="action.call_webhook",
                          validate=validate.Length(min=1, max=100),
                          metadata={"description": "the event type the receiver sees"})


def call_webhook(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict:
    """Action ``integrations.call_webhook``: send each record (as its registry schema
    dumps it) to an admin-defined endpoint, queued like every delivery (signed,
    retried, dead-lettered).  Journey authors pick an endpoint, never a raw URL."""
    import uuid

    from flask import current_app
    from trellis.actions import ActionError
    from trellis_integrations.connectors import chat_body

    endpoint = session.get(WebhookEndpoint, params["endpoint_id"])
    if endpoint is None or not endpoint.active:
        raise ActionError({"endpoint_id": [f"No active webhook with id {params['endpoint_id']}."]})
    entry = current_app.extensions["trellis"].registry.get(model)
    key = entry.model.__mapper__.primary_key[0]
    schema = entry.schema()
    rows = []
    for record in session.scalars(select(entry.model).where(key.in_(ids)).order_by(key)):
        event_id = uuid.uuid4().hex
        body = {"id": event_id, "type": params["event"], "schema_version": SCHEMA_VERSION,
                "occurred_at": utcnow().isoformat(), "plugin": PLUGIN, "model": model,
                "record_id": getattr(record, key.key), "actor_id": None,
                "data": json.loads(json.dumps(schema.dump(record), default=str)),
                "changes": None}
        payload = chat_body(endpoint.kind, endpoint.template, body) \
            if endpoint.kind in ("slack", "dingtalk", "wecom", "custom") \
            else json.dumps(body, default=str, separators=(",", ":"))
        rows.append({"endpoint_id": endpoint.id, "event_id": event_id,
                     "event_name": params["event"], "payload": payload, "status": "pending",
                     "attempts": 0, "next_attempt_at": utcnow(), "created_on": utcnow()})
    if not rows:
        return {"queued": 0}
    deliveries = [WebhookDelivery(**row) for row in rows]
    session.add_all(deliveries)
    session.flush()  # one multi-row INSERT; the jobs below wait for the caller's commit
    for delivery in deliveries:
        enqueue(DELIVER_JOB, delivery_id=delivery.id)
    return {"queued": len(deliveries)}


def send_test(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """Send a ``integrations.test`` event to one endpoint now (not queued)."""
    from trellis.events import Event
    from trellis_integrations.connectors import chat_body

    evt = Event(name="integrations.test", data={"message": "Test from Trellis"},
                plugin=PLUGIN)
    body = envelope(evt)
    payload = chat_body(endpoint.kind, endpoint.template, body) \
        if endpoint.kind in ("slack", "dingtalk", "wecom", "custom") \
        else json.dumps(body, separators=(",", ":"))
    probe = WebhookDelivery(id=0, endpoint_id=endpoint.id, event_id=evt.id,
                            event_name=evt.name, payload=payload)
    try:
        code, response = _send(endpoint, probe)
    except netguard.BlockedTarget as exc:
        return {"ok": False, "status": None, "message": f"Refused: {exc}"}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "status": None, "message": f"{type(exc).__name__}: {exc}"}
    return {"ok": code is not None and 200 <= code < 300, "status": code,
            "message": response[:200]}
