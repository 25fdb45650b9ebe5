"""The plugin kernel: discovery, dependency order, and broken plugins reported clearly."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trellis import core_plugin, hookimpl
from trellis.plugins import Plugins
from trellis.specs import Manifest, ModelSpec
from trellis.models import Contact


def plugin(label: str, depends=(), soft=(), **hooks):
    """A throwaway plugin object with a manifest and the given hook functions."""
    attrs = {"trellis_manifest": hookimpl(lambda self: Manifest(label, depends=depends,
                                                                 soft_depends=soft))}
    for name, func in hooks.items():
        attrs[name] = hookimpl(func) if getattr(func, "_marked", True) else func
    return type(label.title().replace(" ", ""), (), attrs)()


def load(*named) -> Plugins:
    plugins = Plugins()
    plugins.load(core_plugin, sorted(named and [(n, "1.0", p) for n, p in named]))
    return plugins


def test_dependency_order_is_topological_and_deterministic():
    named = [("crm_a", plugin("A", depends=["crm_b"])), ("crm_b", plugin("B")),
             ("crm_c", plugin("C", soft=["crm_a"])), ("crm_d", plugin("D"))]
    first = load(*named).order
    assert first == load(*reversed(named)).order
    assert first[0] == "core"
    assert first.index("crm_b") < first.index("crm_a") < first.index("crm_c")


def test_missing_dependency_names_both_plugins_and_its_dependents_fail_too():
    plugins = load(("crm_a", plugin("A", depends=["nope"])),
                   ("crm_b", plugin("B", depends=["crm_a"])), ("crm_ok", plugin("OK")))
    assert plugins.by_name["crm_a"].error == "depends on 'nope', which is not installed"
    assert plugins.by_name["crm_b"].error == "depends on 'crm_a', which failed to load"
    assert [p.name for p in plugins.loaded()] == ["core", "crm_ok"]


def test_dependency_cycle_is_reported_with_the_cycle():
    plugins = load(("crm_x", plugin("X", depends=["crm_y"])),
                   ("crm_y", plugin("Y", depends=["crm_x"])), ("crm_ok", plugin("OK")))
    assert plugins.by_name["crm_x"].error == "dependency cycle: crm_x -> crm_y -> crm_x"
    assert plugins.by_name["crm_y"].error == "dependency cycle: crm_y -> crm_x -> crm_y"
    assert "crm_ok" in plugins.order and "crm_x" not in plugins.order


def test_unknown_hook_is_rejected_even_without_the_marker():
    def trellis_modles(self):  # a typo: no spec of that name
        return []

    trellis_modles._marked = False  # undecorated, as a hurried author would write it
    plugins = load(("crm_typo", plugin("Typo", trellis_modles=trellis_modles)),
                   ("crm_ok", plugin("OK")))
    assert plugins.by_name["crm_typo"].error == "implements unknown hook(s): trellis_modles"
    assert [p.name for p in plugins.loaded()] == ["core", "crm_ok"]


def test_manifest_is_required():
    bare = type("Bare", (), {})()
    plugins = load(("crm_bare", bare))
    assert plugins.by_name["crm_bare"].error == (
        "trellis_manifest must return a trellis.specs.Manifest")


def test_plugin_published_hooks_can_be_implemented_by_others():
    import types

    import pluggy

    spec = pluggy.HookspecMarker("trellis")
    specs = types.ModuleType("deal_hooks")

    def trellis_deal_won(amount):
        """Called when a deal is won."""

    specs.trellis_deal_won = spec(trellis_deal_won)

    class Publisher:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Publisher")

        @hookimpl
        def trellis_add_hookspecs(self, pm):
            pm.add_hookspecs(specs)

    class Listener:
        @hookimpl
        def trellis_manifest(self):
            return Manifest("Listener", depends=["crm_pub"])

        @hookimpl
        def trellis_deal_won(self, amount):
            return amount * 2

    plugins = load(("crm_pub", Publisher()), ("crm_listen", Listener()))
    assert plugins.by_name["crm_listen"].ok, plugins.by_name["crm_listen"].error
    assert plugins.pm.hook.trellis_deal_won(amount=21) == [42]


def test_plugin_failing_to_register_is_reported_and_the_app_boots_without_it(
        trellis_app_factory, api_login, caplog):
    def trellis_models(self):
        raise RuntimeError("boom in models")

    dependent = plugin("Dependent", depends=["crm_bad"])
    with caplog.at_level(logging.ERROR, logger="trellis"):
        app = trellis_app_factory(extra_plugins=[
            ("crm_bad", plugin("Bad", trellis_models=trellis_models)),
            ("crm_dep", dependent), ("crm_ok", plugin("OK"))])
    client = app.test_client()
    rows = {r["name"]: r for r in client.get("/api/v1/plugins/",
                                             headers=api_login(client)).get_json()["result"]}
    assert rows["crm_bad"]["error"] == "failed to register: boom in models"
    assert rows["crm_dep"]["error"] == "depends on 'crm_bad', which failed to load"
    assert rows["crm_ok"]["enabled"] is True and rows["crm_ok"]["error"] is None
    assert "plugin 'crm_bad' disabled: failed to register: boom in models" in caplog.text
    assert client.get("/api/v1/contact/", headers=api_login(client)).status_code == 200


def test_a_model_name_taken_twice_names_both_plugins(trellis_app_factory):
    def trellis_models(self):
        return [ModelSpec(Contact, "contact", "Contact again")]

    app = trellis_app_factory(extra_plugins=[("crm_dup", plugin("Dup", trellis_models=trellis_models))])
    error = app.extensions["trellis"].plugins.by_name["crm_dup"].error
    assert error == ("failed to register: plugin 'crm_dup' registers model 'contact', "
                     "already registered by plugin 'core'")


def test_a_model_class_name_taken_twice_names_both_plugins(trellis_app_factory):
    """Plugins share one declarative class registry, where a second ``Contact``
    class would make string relationships ambiguous: refused at registration.
    (The clashing class lives on a base of its own, so this test leaves
    Trellis's class registry as it found it.)"""
    from sqlalchemy import Integer
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    class Elsewhere(DeclarativeBase):
        pass

    clash = type("Contact", (Elsewhere,), {"__tablename__": "crm_clash_contact",
                                            "__module__": "crm_clash.models",
                                            "id": mapped_column(Integer, primary_key=True)})

    def trellis_models(self):
        return [ModelSpec(clash, "clash_contact", "Clashing contact")]

    app = trellis_app_factory(extra_plugins=[
        ("crm_clash", plugin("Clash", trellis_models=trellis_models))])
    error = app.extensions["trellis"].plugins.by_name["crm_clash"].error
    assert error == ("failed to register: plugin 'crm_clash' registers a model class named "
                     "'Contact' (crm_clash.models), and plugin 'core' has one "
                     "(trellis.models): rename one of them")


def test_installed_plugin_that_raises_on_import_is_listed_with_its_error(tmp_path):
    """Real entry-point discovery: a distribution whose module raises on import."""
    site = tmp_path / "site"
    dist = site / "crm_explodes-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crm-explodes\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[trellis.plugins]\nexplodes = crm_explodes\n")
    (site / "crm_explodes.py").write_text("raise ImportError('missing native library libfoo')\n")
    env = {**os.environ, "PYTHONPATH": str(site), "TRELLIS_INSTANCE_PATH": str(tmp_path / "inst"),
           "TRELLIS_PLUGINS": "explodes"}
    trellis = Path(sys.executable).parent / "trellis"
    init = subprocess.run([trellis, "init", "--admin-password", "pw-123456"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    assert "plugin explodes: failed to import: ImportError('missing native library libfoo')" \
        in init.stderr
    listing = subprocess.run([trellis, "plugins", "list"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "explodes         1.2.3      ERROR" in listing.stdout
    assert "failed to import: ImportError('missing native library libfoo')" in listing.stdout
    assert "core             0.1.0      enabled" in listing.stdout
    # and the log says so too, naming the plugin
    assert "plugin 'explodes' disabled: failed to import" in listing.stderr
    enable = subprocess.run([trellis, "plugins", "enable", "explodes"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert enable.returncode == 1
    assert "Error: plugin 'explodes' cannot be enabled: failed to import" in enable.stderr


@pytest.mark.parametrize("hook", ["trellis_views", "trellis_jobs"])
def test_hook_returning_the_wrong_kind_of_object_is_reported(trellis_app_factory, hook):
    bad = plugin("Wrong", **{hook: lambda self: ["not a spec"]})
    app = trellis_app_factory(extra_plugins=[("crm_wrong", bad)])
    error = app.extensions["trellis"].plugins.by_name["crm_wrong"].error
    assert error.startswith("failed to register: ") and "'not a spec'" in error
