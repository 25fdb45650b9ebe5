"""Full-text search over a plugin's table, one interface on SQLite and PostgreSQL.

* SQLite: an FTS5 virtual table ``<table>_fts`` with external content (the
  table itself, ``content_rowid`` its integer key), kept in step by three
  triggers, tokenised by ``porter unicode61`` (English stemming, accents
  folded);
* PostgreSQL: a GIN expression index ``ix_<table>_fulltext`` on
  ``to_tsvector('<language>', coalesce(col1, '') || ' ' || ...)``, queried with
  the very same expression so the index is used.

A plugin creates the index in its own migration and searches with one call::

    # migrations/versions/00xx_....py
    from trellis import fulltext

    def upgrade():
        op.create_table("kb_article", ...)
        fulltext.create(op, "kb_article", ["title", "body"])

    def downgrade():
        fulltext.drop(op, "kb_article")
        op.drop_table("kb_article")

    # anywhere
    hits = fulltext.search(db.session, Article.__table__, ["title", "body"], "printer jam")
    rows = db.session.execute(select(Article).join(hits, hits.c.id == Article.id)
                              .order_by(hits.c.rank)).scalars()

The words of the user's text are taken as words only (no query syntax
reaches FTS5 or ``to_tsquery``): ``match="all"`` needs every word (stemmed),
``match="any"`` one of them (for suggestions). ``rank`` sorts best first on
both databases (smaller is better). On SQLite, a later ``batch_alter_table``
of the content table drops the triggers: call :func:`create` again after it.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from sqlalchemy import Table, column, func, literal_column, select, table, text

__all__ = ["create", "drop", "search", "words"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_WORD = re.compile(r"\w+", re.UNICODE)
LANGUAGES = ("simple", "english", "german", "french", "spanish", "italian", "dutch")
#: At most this many words of the user's text are used.
MAX_WORDS = 32


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def _dialect(bind: Any) -> str:
    """The dialect name of an alembic ``op``, a connection, an engine or a session."""
    if hasattr(bind, "get_bind"):
        bind = bind.get_bind()
    return bind.dialect.name


def _execute(bind: Any, sql: str) -> None:
    if hasattr(bind, "execute") and hasattr(bind, "get_bind") and hasattr(bind, "f"):
        bind.execute(sql)  # alembic op
    else:
        (bind.get_bind() if hasattr(bind, "get_bind") else bind).execute(text(sql))


def _document(columns: Sequence[str]) -> str:
    return " || ' ' || ".join(f"coalesce({_ident(c)}, '')" for c in columns)


def _language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    return language


def is_artifact(name: str) -> bool:
    """Whether a table or index named ``name`` is one this module creates (the FTS5
    table and its shadow tables, the GIN index), not one a model declares."""
    return "_fts" in name or name.endswith("_fulltext")


def create(bind: Any, table_name: str, columns: Sequence[str], *, key: str = "id",
           language: str = "english") -> None:
    """Create the full-text index of ``columns`` of ``table_name`` (idempotent),
    and index the rows already there.  ``bind``: alembic ``op`` or a connection."""
    name, cols, key = _ident(table_name), [_ident(c) for c in columns], _ident(key)
    if _dialect(bind) == "postgresql":
        _execute(bind, f"CREATE INDEX IF NOT EXISTS ix_{name}_fulltext ON {name} USING gin "
                       f"(to_tsvector('{_language(language)}'::regconfig, {_document(cols)}))")
        return
    fts, col_list = f"{name}_fts", ", ".join(cols)
    new = ", ".join(f"new.{c}" for c in cols)
    old = ", ".join(f"old.{c}" for c in cols)
    _execute(bind, f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({col_list}, "
                   f"content='{name}', content_rowid='{key}', "
                   f"tokenize='porter unicode61 remove_diacritics 2')")
    for suffix, when, body in (
            ("ai", "AFTER INSERT", f"INSERT INTO {fts}(rowid, {col_list}) VALUES (new.{key}, {new});"),
            ("ad", "AFTER DELETE", f"INSERT INTO {fts}({fts}, rowid, {col_list}) "
                                   f"VALUES ('delete', old.{key}, {old});"),
            ("au", "AFTER UPDATE", f"INSERT INTO {fts}({fts}, rowid, {col_list}) "
                                   f"VALUES ('delete', old.{key}, {old}); "
                                   f"INSERT INTO {fts}(rowid, {col_list}) VALUES (new.{key}, {new});")):
        _execute(bind, f"CREATE TRIGGER IF NOT EXISTS {fts}_{suffix} {when} ON {name} "
                       f"BEGIN {body} END")
    _execute(bind, f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def drop(bind: Any, table_name: str) -> None:
    """Drop what :func:`create` made."""
    name = _ident(table_name)
    if _dialect(bind) == "postgresql":
        _execute(bind, f"DROP INDEX IF EXISTS ix_{name}_fulltext")
        return
    for suffix in ("ai", "ad", "au"):
        _execute(bind, f"DROP TRIGGER IF EXISTS {name}_fts_{suffix}")
    _execute(bind, f"DROP TABLE IF EXISTS {name}_fts")


def words(query: str | None) -> list[str]:
    """The words of a user's search text (no operators, at most :data:`MAX_WORDS`)."""
    return [w.lower() for w in _WORD.findall(query or "")][:MAX_WORDS]


def search(session: Any, target: Table | str, columns: Sequence[str], query: str | None, *,
           key: str = "id", language: str = "english", match: str = "all") -> Any:
    """A subquery ``(id, rank)`` of the rows matching ``query``; ``rank``: smaller
    is better.  No words: matches nothing.  ``match``: ``all`` or ``any`` word."""
    name = _ident(target if isinstance(target, str) else target.name)
    cols, key = [_ident(c) for c in columns], _ident(key)
    if match not in ("all", "any"):
        raise ValueError("match must be 'all' or 'any'")
    terms = words(query)
    if not terms:
        return select(literal_column("0").label("id"), literal_column("0").label("rank")) \
            .where(literal_column("1") == literal_column("0")).subquery()
    if _dialect(session) == "postgresql":
        src = table(name, column(key), *(column(c) for c in cols))
        lang = literal_column(f"'{_language(language)}'::regconfig")
        document = func.to_tsvector(lang, literal_column(_document(cols)))
        tsquery = func.to_tsquery(lang, (" & " if match == "all" else " | ").join(terms))
        return (select(src.c[key].label("id"), (-func.ts_rank(document, tsquery)).label("rank"))
                .select_from(src).where(document.op("@@")(tsquery)).subquery())
    fts = table(f"{name}_fts", column("rowid"))
    expression = (" AND " if match == "all" else " OR ").join(f'"{t}"' for t in terms)
    return (select(fts.c.rowid.label("id"), func.bm25(literal_column(f"{name}_fts")).label("rank"))
            .select_from(fts).where(literal_column(f"{name}_fts").op("MATCH")(expression))
            .subquery())
