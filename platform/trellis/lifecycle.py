"""Enable, disable and uninstall plugins: the one implementation behind the
Plugins page, the REST API and ``trellis plugins ...``."""

from __future__ import annotations

from trellis import migrate
from trellis.db import db
from trellis.extension import Trellis
from trellis.models import PluginSetting, PluginState
from trellis.plugins import CORE, PluginError
from trellis.security import sync_permissions


def _plugin(ext: Trellis, name: str):
    plugin = ext.plugins.by_name.get(name)
    if plugin is None:
        raise PluginError(f"no plugin named {name!r} is installed")
    return plugin


def _set(name: str, enabled: bool, version: str) -> None:
    row = db.session.get(PluginState, name)
    if row is None:
        row = PluginState(name=name)
        db.session.add(row)
    row.enabled = enabled
    row.version = version


def enable(ext: Trellis, name: str) -> None:
    """Apply the plugin's migrations, sync its permissions and switch it on.

    Refused (naming them) while a dependency is disabled or the plugin failed
    to load.
    """
    plugin = _plugin(ext, name)
    if name == CORE:
        return
    if not plugin.ok:
        raise PluginError(f"plugin {name!r} cannot be enabled: {plugin.error}")
    off = sorted(d for d in ext.plugins.dependencies_of(name) if not ext.is_enabled(d, fresh=True))
    if off:
        raise PluginError(
            f"plugin {name!r} depends on {', '.join(map(repr, off))}: enable "
            f"{'it' if len(off) == 1 else 'them'} first"
        )
    migrate.upgrade(ext, [name])
    sync_permissions(ext, [name])
    _set(name, True, plugin.version)
    db.session.commit()
    ext.forget_state()


def disable(ext: Trellis, name: str) -> None:
    """Switch the plugin off; its data stays.  Refused while an enabled plugin
    depends on it."""
    _plugin(ext, name)
    if name == CORE:
        raise PluginError("the core cannot be disabled")
    on = sorted(d for d in ext.plugins.dependents_of(name) if ext.is_enabled(d, fresh=True))
    if on:
        raise PluginError(
            f"plugin {name!r} cannot be disabled: enabled plugin(s) "
            f"{', '.join(map(repr, on))} depend on it; disable them first"
        )
    row = db.session.get(PluginState, name)
    if row is not None:
        row.enabled = False
        db.session.commit()
    ext.forget_state()


def uninstall(ext: Trellis, name: str) -> None:
    """Drop a disabled plugin's tables, permissions and settings.  Irreversible."""
    _plugin(ext, name)
    if name == CORE:
        raise PluginError("the core cannot be uninstalled")
    if ext.is_enabled(name, fresh=True):
        raise PluginError(f"plugin {name!r} is enabled: disable it before uninstalling")
    migrate.downgrade_plugin(ext, name)
    from trellis.security import remove_permissions

    remove_permissions(ext, name)
    for model in (PluginState, PluginSetting):
        row = db.session.get(model, name)
        if row is not None:
            db.session.delete(row)
    db.session.commit()
    ext.forget_state()
