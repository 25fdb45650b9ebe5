"""Replacing a result table's rows in place, set-based.

A full recompute used to ``DELETE`` every row of a result table and
``INSERT`` the new ones.  On PostgreSQL each inserted row then checks its
foreign key to the contact (one trigger call per row: most of the time of a
million-row insert).  :func:`replace_rows` instead stages the new rows in a
temporary table and ``UPDATE``\\ s the rows that exist (their key does not
change, so no foreign key is checked), ``INSERT``\\ s only the new keys and
``DELETE``\\ s the keys that are gone.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from sqlalchemy import column, insert, table, text


def replace_rows(session: Any, target: Any, key: str, columns: list[str],
                 fill: Callable[[Any, Any], None]) -> dict[str, int]:
    """Make ``target`` (a Table keyed by ``key``) hold exactly the rows that
    ``fill(connection, stage)`` inserts into ``stage``, a temporary table of
    its ``columns`` (``key`` among them).  Returns the rows updated, inserted
    and deleted."""
    conn = session.connection()
    name = f"scoring_sync_{uuid.uuid4().hex[:12]}"
    cols = ", ".join(columns)
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} AS SELECT {cols} FROM {target.name} "
                      f"WHERE 1 = 0"))
    stage = table(name, *[column(c, target.c[c].type) for c in columns])
    fill(conn, stage)
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {name}"))
    t = target.name
    sets = ", ".join(f"{c} = s.{c}" for c in columns if c != key)
    updated = conn.execute(text(
        f"UPDATE {t} SET {sets} FROM {name} s WHERE {t}.{key} = s.{key}")).rowcount
    inserted = conn.execute(text(
        f"INSERT INTO {t} ({cols}) SELECT {', '.join('s.' + c for c in columns)} FROM {name} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {t}.{key} = s.{key})")).rowcount
    deleted = conn.execute(text(
        f"DELETE FROM {t} WHERE NOT EXISTS (SELECT 1 FROM {name} s WHERE s.{key} = {t}.{key})")
    ).rowcount
    conn.execute(text(f"DROP TABLE {name}"))
    return {"updated": updated, "inserted": inserted, "deleted": deleted}


def fill_from(source: Any, columns: list[str]) -> Callable[[Any, Any], None]:
    """A ``fill`` for :func:`replace_rows`: ``INSERT … SELECT`` of ``source``."""
    def fill(conn: Any, stage: Any) -> None:
        conn.execute(insert(stage).from_select(columns, source))
    return fill
