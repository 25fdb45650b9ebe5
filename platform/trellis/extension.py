"""``app.extensions["trellis"]``: the plugins, registry, events and jobs of one app."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from trellis.events import EventBus
from trellis.jobs import JobRunner
from trellis.plugins import CORE, PluginError, Plugins
from trellis.registry import ModelRegistry

log = logging.getLogger(__name__)


class Trellis:
    """Everything the core knows about the plugins of one Flask app."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.plugins = Plugins()
        self.registry = ModelRegistry()
        self.events = EventBus(self)
        self.jobs = JobRunner(self)
        self.settings_schemas: dict[str, type] = {}
        self.roles: list[tuple[str, Any]] = []
        self.widgets: list[tuple[str, Any]] = []
        self.panels: list[tuple[str, Any]] = []
        #: name -> (plugin, FeatureSpec) and (plugin, ActionSpec)
        self.features: dict[str, tuple[str, Any]] = {}
        self.actions: dict[str, tuple[str, Any]] = {}
        self.migrations: dict[str, str] = {}
        self.cli_commands: list[tuple[str, Any]] = []
        #: blueprint name -> (plugin, BlueprintSpec or None for FAB views)
        self.blueprint_owner: dict[str, tuple[str, Any]] = {}
        #: plugin -> permission view-menu names its views and APIs use
        self.resources: dict[str, set[str]] = {}
        self._state: dict[str, bool] = {}
        self._state_read_at = float("-inf")
        app.extensions["trellis"] = self

    # ------------------------------------------------------------ enabled state

    def state(self, fresh: bool = False) -> dict[str, bool]:
        """``{plugin: enabled}`` as stored, cached for ``TRELLIS_PLUGIN_STATE_TTL`` s.

        Every web and rq worker reads it, so a change made by any process takes
        effect everywhere within the TTL, without a restart.
        """
        ttl = self.app.config["TRELLIS_PLUGIN_STATE_TTL"]
        now = time.monotonic()
        if fresh or now - self._state_read_at > ttl:
            from trellis.db import db
            from trellis.models import PluginState

            try:
                with db.engine.connect() as conn:
                    rows = conn.execute(select(PluginState.name, PluginState.enabled)).all()
                self._state = {name: bool(enabled) for name, enabled in rows}
            except SQLAlchemyError:  # no schema yet: `trellis init` has not run
                self._state = {}
            self._state_read_at = now
        return self._state

    def is_enabled(self, name: str, fresh: bool = False) -> bool:
        if name == CORE:
            return True
        plugin = self.plugins.by_name.get(name)
        if plugin is None or not plugin.ok:
            return False
        return self.state(fresh).get(name, False)

    def forget_state(self) -> None:
        self._state_read_at = float("-inf")


def current_trellis() -> Trellis:
    """The :class:`Trellis` of the current app."""
    return current_app.extensions["trellis"]


__all__ = ["Trellis", "current_trellis", "PluginError"]
