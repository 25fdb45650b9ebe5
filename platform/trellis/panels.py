"""Panels that plugins add to other models' record pages.

The contact page shows the customer's deals and orders (sales), tickets
(service), scores (scoring)... without the core knowing any of them: each
plugin offers :class:`~trellis.specs.PanelSpec` objects through
``trellis_record_panels``, and every :class:`~trellis.views.TrellisModelView`
record page shows the panels for its registry model, from enabled plugins,
that the user has the permission for.  A panel's queries must apply the
user's record rules (``trellis.rules.restrict``).  A panel that fails is
logged and shown as an error line; the page and the other panels still work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedPanel:
    plugin: str
    name: str
    label: str
    html: Markup
    failed: bool = False
    wide: bool = False


def for_model(model: str) -> list[tuple[str, Any]]:
    """``(plugin, PanelSpec)`` of the enabled plugins' panels for ``model`` that the
    current user may see, in display order."""
    from flask import current_app

    ext = current_app.extensions["trellis"]
    sm = current_app.appbuilder.sm
    found = []
    for plugin, spec in ext.panels:
        if model not in spec.models or not ext.is_enabled(plugin):
            continue
        if spec.permission is not None and not sm.has_access(*spec.permission):
            continue
        found.append((plugin, spec))
    return sorted(found, key=lambda item: (item[1].order, item[1].name))


def render(model: str, record: Any) -> list[RenderedPanel]:
    """The panels of ``record`` (a ``model`` registry record), rendered."""
    out = []
    for plugin, spec in for_model(model):
        try:
            html = spec.render(record)
        except Exception:  # noqa: BLE001 - one broken panel must not break the page
            log.exception("panel %s of plugin %s failed", spec.name, plugin)
            out.append(RenderedPanel(plugin, spec.name, spec.label,
                                     Markup("<p class='text-danger'>This panel could not be "
                                            "shown.</p>"), failed=True))
            continue
        if html is not None:
            out.append(RenderedPanel(plugin, spec.name, spec.label, Markup(html),
                                     wide=getattr(spec, "wide", False)))
    return out
