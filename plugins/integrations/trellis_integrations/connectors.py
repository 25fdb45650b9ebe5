"""Connectors: chat bots through HTTP templates, plugin-provided sources and
destinations, and connection tests for e-mail.

* Chat/messaging (``slack``, ``dingtalk``, ``wecom``, ``custom``): webhook
  endpoints whose body is a message rendered from the endpoint's template
  (sandboxed Jinja) instead of the signed JSON event; delivered through
  :mod:`trellis.netguard` like every webhook.
* :class:`ConnectorSpec` from the hook ``trellis_integrations_connectors``
  (:mod:`.hookspecs`): a destination is a further endpoint kind, a source is
  polled by ``integrations.pull_sources``.
* :func:`test_smtp` / :func:`test_imap`: the Connectors page's "test
  connection" buttons (SMTP from the core's mail settings, IMAP through the
  core's ``trellis.mailbox`` where present).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from flask import current_app

log = logging.getLogger(__name__)

PLUGIN = "integrations"
CHAT_KINDS = ("slack", "dingtalk", "wecom")
DEFAULT_MESSAGE = ("Trellis: {{ event.type }}{% if event.record_id %} "
                   "({{ event.model }} #{{ event.record_id }}){% endif %}")


@dataclass(frozen=True)
class ConnectorSpec:
    """A source or destination an integrator's plugin adds.

    ``send(endpoint, event) -> int | None``: deliver one event (the envelope
    dict webhooks sign) to ``endpoint`` (a ``WebhookEndpoint``: its ``url``,
    ``template`` and ``secret`` are the connector's to use); return the status
    code, raise to fail the attempt (it is retried).
    ``fetch(since: datetime | None) -> list[dict]``: new behaviour events in the
    ingestion API's shape.
    """

    name: str
    label: str
    send: Callable[[Any, dict[str, Any]], int | None] | None = None
    fetch: Callable[[datetime | None], list[dict[str, Any]]] | None = None
    description: str = ""


def connectors() -> dict[str, tuple[str, ConnectorSpec]]:
    """``{name: (plugin, spec)}`` of the connectors of enabled plugins."""
    ext = current_app.extensions["trellis"]
    hook = getattr(ext.plugins.pm.hook, "trellis_integrations_connectors", None)
    if hook is None:
        return {}
    out: dict[str, tuple[str, ConnectorSpec]] = {}
    for plugin, specs in ext.plugins.call_each("trellis_integrations_connectors"):
        if not ext.is_enabled(plugin):
            continue
        for spec in specs or []:
            if isinstance(spec, ConnectorSpec):
                out.setdefault(spec.name, (plugin, spec))
    return out


def endpoint_kinds() -> list[str]:
    from trellis_integrations.models import ENDPOINT_KINDS

    return [*ENDPOINT_KINDS, *[n for n, (_, s) in connectors().items() if s.send]]


# ------------------------------------------------------------------ templates


def check_template(source: str) -> list[str]:
    """Problems with a message template, as messages (``[]`` when fine)."""
    from trellis import templating

    return templating.check(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render a user-written template in the core's sandbox (``trellis.templating``)."""
    from trellis import templating

    return templating.render(source, context)


def chat_body(kind: str, template: str | None, event: dict[str, Any]) -> str:
    """The request body for a chat bot (or a custom template) for one event."""
    if kind == "custom":
        return render(template or "{{ event | tojson }}", {"event": event})
    text = render(template or DEFAULT_MESSAGE, {"event": event})
    if kind == "slack":
        return json.dumps({"text": text})
    return json.dumps({"msgtype": "text", "text": {"content": text}})  # dingtalk, wecom


# ------------------------------------------------------------------ sources


def pull_sources() -> dict[str, int]:
    """Job: ingest what every source connector has new since its last pull."""
    from trellis.db import db, utcnow

    from trellis_integrations.models import SourceState
    from trellis_integrations.tracking import ingest

    out: dict[str, int] = {}
    for name, (_plugin, spec) in connectors().items():
        if spec.fetch is None:
            continue
        state = db.session.get(SourceState, name) or SourceState(name=name)
        started = utcnow()
        events = spec.fetch(state.last_pulled_at) or []
        result = ingest(events, source=name)
        state.last_pulled_at, state.last_count = started, result["accepted"]
        db.session.add(state)
        db.session.commit()
        out[name] = result["accepted"]
    return out


# ------------------------------------------------------------------ e-mail tests


def test_smtp() -> dict[str, Any]:
    """Say hello to the configured SMTP server (``trellis.mail.check_connection``)."""
    from trellis import mail

    result = mail.check_connection()
    if result.get("transport") != "smtp":
        return {"ok": False, "message": "No SMTP server is configured; e-mail is kept "
                                         f"in the outbox ({result.get('detail')})."}
    return {"ok": bool(result["ok"]), "message": f"SMTP {result['detail']}"}


def test_imap() -> dict[str, Any]:
    """Log in to the configured IMAP mailbox, through the core's ``trellis.mailbox``."""
    try:
        from trellis import mailbox  # added to the core by the service plugin's issue
    except ImportError:
        return {"ok": False, "message": "This Trellis has no IMAP support yet "
                                         "(trellis.mailbox)."}
    tester = getattr(mailbox, "test_connection", None)
    if tester is None:
        return {"ok": False, "message": "trellis.mailbox offers no connection test."}
    try:
        result = tester()
    except Exception as exc:  # noqa: BLE001 - report any failure to the admin
        return {"ok": False, "message": f"IMAP: {exc}"}
    if isinstance(result, dict):
        return {"ok": bool(result.get("ok", True)), "message": str(result.get("message", ""))}
    return {"ok": bool(result), "message": "IMAP login succeeded." if result else "IMAP failed."}
