"""Hooks the integrations plugin publishes for other plugins (``trellis_add_hookspecs``).

An integrator's plugin implements them with ``@hookimpl(optionalhook=True)``
so it still loads where the integrations plugin is not installed::

    from trellis import hookimpl
    from trellis_integrations.connectors import ConnectorSpec   # only when installed

    @hookimpl(optionalhook=True)
    def trellis_integrations_connectors():
        return [ConnectorSpec("teams", "Microsoft Teams", send=send_to_teams)]
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("trellis")


@hookspec
def trellis_integrations_connectors() -> list[Any]:
    """Return connectors this plugin adds, as a list of
    :class:`trellis_integrations.connectors.ConnectorSpec`.

    A **destination** (``send``) becomes a kind of webhook endpoint: events an
    endpoint of that kind subscribes to are delivered by calling
    ``send(endpoint, event)`` with the same queueing, retries, dead-letter and
    delivery log as webhooks.  A **source** (``fetch``) is polled by the job
    ``integrations.pull_sources``: ``fetch(since)`` returns behaviour events in
    the shape of the ingestion API, which are ingested like any others.
    """
