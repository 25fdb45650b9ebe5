"""Alembic migrations: one branch for the core, one per plugin.

The revision scripts of every *installed* plugin are locatable, enabled or
not, so the version table never names a revision alembic cannot find.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from trellis.db import db
from trellis.extension import Trellis
from trellis.plugins import CORE, PluginError

HERE = Path(__file__).parent / "migrations"


def alembic_config(ext: Trellis) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    locations = [str(HERE / "versions")] + [
        ext.migrations[name] for name in sorted(ext.migrations) if name != CORE
    ]
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    return cfg


def _run(ext: Trellis, fn, *args, **kwargs) -> None:
    cfg = alembic_config(ext)
    sqlite = db.engine.dialect.name == "sqlite"
    with db.engine.connect() as conn:
        if sqlite:
            # alembic's batch mode rebuilds a table by dropping it; with foreign
            # keys on, SQLite would cascade that drop to every referencing row.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside BEGIN: it applies
            conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                fn(cfg, *args, **kwargs)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise PluginError(f"migration left broken references: {broken[:5]}")
        finally:
            if sqlite:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def heads_in_database(ext: Trellis) -> list[str]:
    if not inspect(db.engine).has_table("alembic_version"):
        return []
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def check_orphans(ext: Trellis) -> None:
    """Fail, naming the revision, when the database holds a revision that no
    installed plugin provides (a plugin removed without being uninstalled)."""
    script = ScriptDirectory.from_config(alembic_config(ext))
    known = {rev.revision for rev in script.walk_revisions()}
    orphans = [rev for rev in heads_in_database(ext) if rev not in known]
    if orphans:
        raise PluginError(
            f"the database holds migration revision(s) {', '.join(orphans)} that no installed "
            "plugin provides: reinstall the plugin and run `trellis plugins uninstall NAME`, "
            "or restore its package"
        )


def upgrade(ext: Trellis, plugins: Iterable[str] | None = None) -> list[str]:
    """Apply the core branch, then each given plugin's branch in dependency order.

    ``plugins=None`` means every enabled plugin.  Returns the branches applied.
    """
    check_orphans(ext)
    wanted = set(plugins) if plugins is not None else {
        p.name for p in ext.plugins.loaded() if ext.is_enabled(p.name, fresh=True)
    }
    applied = [CORE]
    _run(ext, command.upgrade, f"{CORE}@head")
    for plugin in ext.plugins.loaded():
        if plugin.name in wanted and plugin.name in ext.migrations and plugin.name != CORE:
            _run(ext, command.upgrade, f"{plugin.name}@head")
            applied.append(plugin.name)
    return applied


def downgrade_plugin(ext: Trellis, name: str) -> None:
    """Remove a plugin's tables: its branch down to nothing."""
    if name not in ext.migrations:
        return
    script = ScriptDirectory.from_config(alembic_config(ext))
    branch = {rev.revision for rev in script.iterate_revisions(f"{name}@head", "base")}
    if branch & set(heads_in_database(ext)):
        _run(ext, command.downgrade, f"{name}@base")
