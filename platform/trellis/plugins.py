"""Plugin discovery, loading, dependency order and per-plugin hook calls.

One :class:`Plugins` object per Flask app (``app.extensions["trellis"].plugins``):
there is no module-level plugin manager, so tests and several apps in one
process never leak plugins into each other.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Iterable, Iterator

import pluggy

from trellis import hookspecs
from trellis.specs import Manifest

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "trellis.plugins"
CORE = "core"
HOOK_PREFIX = "trellis_"


class PluginError(Exception):
    """A plugin could not be loaded or changed; the message names it."""


@dataclass
class Plugin:
    """A discovered plugin: loaded (``module`` set) or failed (``error`` set)."""

    name: str
    version: str = ""
    module: Any = None
    manifest: Manifest | None = None
    error: str | None = None
    detail: str | None = None
    builtin: bool = False
    dependents: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.manifest.label if self.manifest else self.name

    @property
    def depends(self) -> list[str]:
        return list(self.manifest.depends) if self.manifest else []

    @property
    def ok(self) -> bool:
        return self.error is None and self.module is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "version": self.version,
            "description": self.manifest.description if self.manifest else "",
            "depends": self.depends,
            "builtin": self.builtin,
            "error": self.error,
        }


class TrellisPluginManager(pluggy.PluginManager):
    """Treat every ``trellis_*`` function as a hook implementation.

    pluggy ignores undecorated functions, so a misspelt hook would pass
    silently; like pytest we claim the whole prefix and reject unknown names.
    """

    def parse_hookimpl_opts(self, plugin: Any, name: str):  # type: ignore[override]
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX):
            if callable(getattr(plugin, name, None)) and name not in _NOT_HOOKS:
                return {}
        return opts


# Names in a plugin module that start with the prefix but are not hooks.
_NOT_HOOKS = frozenset({"trellis_hookimpl"})


def discover(extra: Iterable[tuple[str, Any]] = ()) -> list[tuple[str, str, Any]]:
    """Return ``(name, version, loader)`` for every installed plugin.

    ``loader`` is an entry point or, for ``extra`` (tests, the core), a module.
    """
    found: list[tuple[str, str, Any]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        version = ep.dist.version if ep.dist else ""
        found.append((ep.name, version, ep))
    for name, module in extra:
        found.append((name, getattr(module, "__version__", ""), module))
    return sorted(found, key=lambda item: item[0])


class Plugins:
    """The plugins of one application, in dependency order."""

    def __init__(self) -> None:
        self.pm = TrellisPluginManager("trellis")
        self.pm.add_hookspecs(hookspecs)
        self.by_name: dict[str, Plugin] = {}
        self.order: list[str] = []

    # ------------------------------------------------------------------ loading

    def load(
        self,
        core: ModuleType,
        found: list[tuple[str, str, Any]],
        only: Iterable[str] | None = None,
    ) -> None:
        """Import, register and order ``found`` plugins; the core comes first.

        A plugin that fails (import error, unknown hook, bad manifest, missing
        dependency, dependency cycle) is kept with its ``error`` and takes no
        part in the app; so do the plugins that depend on it.
        """
        wanted = set(only) if only is not None else None
        self._register(CORE, getattr(core, "__version__", ""), core, builtin=True)
        for name, version, loader in found:
            if name == CORE:
                self.by_name[name] = Plugin(name, version, error="the name 'core' is reserved")
                continue
            if wanted is not None and name not in wanted:
                continue
            if name in self.by_name:
                self.by_name[name].error = f"plugin name {name!r} is installed twice"
                continue
            try:
                module = loader.load() if isinstance(loader, EntryPoint) else loader
                if isinstance(module, str):
                    module = importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - report any import failure
                self._fail(Plugin(name, version), f"failed to import: {exc!r}")
                continue
            self._register(name, version, module)
        self._check_hooks()
        self._resolve_dependencies()

    def _register(self, name: str, version: str, module: Any, builtin: bool = False) -> None:
        plugin = Plugin(name, version, module=module, builtin=builtin)
        self.by_name[name] = plugin
        try:
            self.pm.register(module, name=name)
        except Exception as exc:  # noqa: BLE001
            self._fail(plugin, f"failed to register: {exc}")
            return
        if name != CORE:
            # Published hooks first, so other plugins may implement them.
            publish = getattr(module, "trellis_add_hookspecs", None)
            if publish is not None:
                try:
                    publish(pm=self.pm)
                except Exception as exc:  # noqa: BLE001
                    self._fail(plugin, f"trellis_add_hookspecs raised: {exc!r}")

    def _check_hooks(self) -> None:
        for plugin in list(self.by_name.values()):
            if not plugin.ok:
                continue
            unknown = sorted(
                caller.name
                for caller in self.pm.get_hookcallers(plugin.module) or ()
                if caller.spec is None
                and not any(
                    impl.optionalhook
                    for impl in caller.get_hookimpls()
                    if impl.plugin is plugin.module
                )
            )
            if unknown:
                self._fail(plugin, "implements unknown hook(s): " + ", ".join(unknown))
                continue
            try:
                manifest = self.call_one(plugin.name, "trellis_manifest")
            except Exception as exc:  # noqa: BLE001
                self._fail(plugin, f"trellis_manifest raised: {exc!r}")
                continue
            if not isinstance(manifest, Manifest):
                self._fail(plugin, "trellis_manifest must return a trellis.specs.Manifest")
                continue
            plugin.manifest = manifest

    def _resolve_dependencies(self) -> None:
        """Order plugins so each comes after its dependencies (Kahn, by name)."""
        pending = {n: p for n, p in self.by_name.items() if p.ok}
        for plugin in pending.values():
            for dep in plugin.depends:
                target = self.by_name.get(dep)
                if target is not None:
                    target.dependents.append(plugin.name)
        changed = True
        while changed:  # propagate missing/broken dependencies
            changed = False
            for name, plugin in list(pending.items()):
                for dep in plugin.depends:
                    target = self.by_name.get(dep)
                    if target is None:
                        problem = f"depends on {dep!r}, which is not installed"
                    elif not target.ok:
                        problem = f"depends on {dep!r}, which failed to load"
                    else:
                        continue
                    self._fail(plugin, problem)
                    del pending[name]
                    changed = True
                    break
        order: list[str] = []
        placed: set[str] = set()
        while pending:
            ready = sorted(
                n for n, p in pending.items()
                if all(d in placed for d in p.depends)
            )
            if not ready:
                for name in sorted(pending):
                    cycle = " -> ".join(self._cycle_from(name, pending))
                    self._fail(pending[name], f"dependency cycle: {cycle}")
                break
            for name in ready:
                order.append(name)
                placed.add(name)
                del pending[name]
        # Sorting by depth (longest chain of hard and soft dependencies) is a
        # topological order that does not depend on discovery order.
        order.sort(key=lambda n: (n != CORE, self._depth(n), n))
        self.order = order

    def _depth(self, name: str, seen: frozenset[str] = frozenset()) -> int:
        plugin = self.by_name[name]
        deps = list(plugin.depends)
        if plugin.manifest:
            deps += [d for d in plugin.manifest.soft_depends if d in self.by_name and self.by_name[d].ok]
        deps = [d for d in deps if d not in seen]
        if not deps:
            return 0 if name == CORE else 1
        return 1 + max(self._depth(d, seen | {name}) for d in deps)

    def _cycle_from(self, start: str, pending: dict[str, Plugin]) -> list[str]:
        path, node = [start], start
        while True:
            nxt = next((d for d in pending[node].depends if d in pending), None)
            if nxt is None:
                return path
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            path.append(nxt)
            node = nxt

    def _fail(self, plugin: Plugin, problem: str) -> None:
        plugin.error = problem
        plugin.detail = traceback.format_exc() if "raised" in problem or "import" in problem else None
        self.by_name[plugin.name] = plugin
        if plugin.module is not None and self.pm.is_registered(plugin.module):
            self.pm.unregister(plugin.module)
        log.error("plugin %r disabled: %s", plugin.name, problem)

    def fail(self, name: str, problem: str) -> None:
        """Take a loaded plugin out (e.g. it raised while registering), with every
        plugin that depends on it; each keeps its error for the Plugins page."""
        dependents = sorted(self.dependents_of(name))
        self._fail(self.by_name[name], problem)
        for dependent in dependents:
            self._fail(self.by_name[dependent], f"depends on {name!r}, which failed to load")
        self.order = [n for n in self.order if self.by_name[n].ok]

    # ------------------------------------------------------------------ calling

    def loaded(self) -> Iterator[Plugin]:
        """Loaded plugins in dependency order, the core first."""
        for name in self.order:
            yield self.by_name[name]

    def all(self) -> list[Plugin]:
        """Every discovered plugin, loaded or failed, by name (core first)."""
        return sorted(self.by_name.values(), key=lambda p: (p.name != CORE, p.name))

    def call_one(self, plugin_name: str, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of ``hook`` (``None`` if it has none)."""
        module = self.by_name[plugin_name].module
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin is module:
                return impl.function(*[kwargs[a] for a in impl.argnames])
        return None

    def implementers(self, hook: str) -> set[str]:
        """Names of the loaded plugins that implement ``hook``."""
        modules = {id(impl.plugin) for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        return {p.name for p in self.loaded() if p.ok and id(p.module) in modules}

    def call_each(self, hook: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Yield ``(plugin name, result)`` for each loaded plugin, in dependency
        order, skipping plugins without an implementation or a result."""
        for plugin in list(self.loaded()):
            if not plugin.ok:
                continue
            result = self.call_one(plugin.name, hook, **kwargs)
            if result is not None:
                yield plugin.name, result

    def dependencies_of(self, name: str) -> set[str]:
        """Every plugin ``name`` needs, transitively."""
        out: set[str] = set()
        stack = list(self.by_name[name].depends)
        while stack:
            dep = stack.pop()
            if dep not in out:
                out.add(dep)
                stack.extend(self.by_name[dep].depends if dep in self.by_name else ())
        return out

    def dependents_of(self, name: str) -> set[str]:
        """Every loaded plugin that needs ``name``, transitively."""
        return {p.name for p in self.loaded() if name in self.dependencies_of(p.name)}
