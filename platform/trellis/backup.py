"""``trellis backup`` and ``trellis restore``: the whole database in one file.

* **SQLite**: SQLite's online backup API (``sqlite3.Connection.backup``), a
  consistent copy even while Trellis writes; restore copies it back the same
  way, page by page, in one step.
* **PostgreSQL**: ``pg_dump --format=custom`` and ``pg_restore --clean
  --if-exists --single-transaction`` (the PostgreSQL client programs must be
  installed, at least the server's version): a restore applies entirely or
  not at all.

The file says which it is (SQLite files start with ``SQLite format 3``,
PostgreSQL custom dumps with ``PGDMP``); restoring one into the other kind of
database is refused.  Stop the web and worker processes before a restore.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


class BackupError(Exception):
    """The backup or restore could not be made; the message says why."""


def _kind(url: Any) -> str:
    backend = make_url(str(url)).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL, not {backend}")
    return backend


def _sqlite_path(url: Any) -> str:
    path = make_url(str(url)).database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return path


def _pg_args(url: Any) -> tuple[list[str], dict[str, str]]:
    """libpq connection arguments (the password goes in the environment, not argv)."""
    parsed = make_url(str(url))
    args = ["--dbname", parsed.database or "", "--host", parsed.host or "127.0.0.1",
            "--port", str(parsed.port or 5432)]
    if parsed.username:
        args += ["--username", parsed.username]
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return args, env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (PostgreSQL client programs are needed)")
    return path


def backup(url: Any, target: str | Path) -> Path:
    """Write the database at ``url`` to ``target``; returns the path."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    if _kind(url) == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        dest = sqlite3.connect(tmp)
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
    else:
        args, env = _pg_args(url)
        result = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner",
                                 "--file", str(tmp), *args], env=env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    tmp.replace(target)  # a half-written backup never has the final name
    return target


def restore(url: Any, source: str | Path) -> None:
    """Replace the database at ``url`` with the backup ``source``."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source}: no such file")
    with source.open("rb") as fh:
        head = fh.read(16)
    kind = _kind(url)
    if kind == "sqlite":
        if not head.startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} is not a SQLite backup")
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            check = backup_db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"{source} is damaged ({check}); nothing was changed")
            live = sqlite3.connect(_sqlite_path(url))
            try:
                backup_db.backup(live)  # one step: the live database changes entirely or not
            finally:
                live.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source} is damaged ({exc}); nothing was changed") from exc
        finally:
            backup_db.close()
        return
    if not head.startswith(PG_MAGIC):
        raise BackupError(f"{source} is not a PostgreSQL backup (pg_dump --format=custom)")
    args, env = _pg_args(url)
    result = subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
                             "--single-transaction", "--exit-on-error", *args, str(source)],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was changed): {result.stderr.strip()}")
