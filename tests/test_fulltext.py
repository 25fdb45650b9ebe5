"""trellis.fulltext: one full-text interface on SQLite (FTS5) and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, insert, select, update
from sqlalchemy.orm import Session

from trellis import fulltext


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = (request.getfixturevalue("postgres_url") if request.param == "postgresql"
           else f"sqlite:///{tmp_path / 'ft.db'}")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_create_search_update_delete_drop(engine):
    meta = MetaData()
    docs = Table("ft_doc", meta, Column("id", Integer, primary_key=True),
                 Column("title", Text), Column("body", Text))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(docs), [{"id": 1, "title": "Routers", "body": "Restart the router"},
                                    {"id": 2, "title": "Printers", "body": "Paper jams happen"}])
        fulltext.create(conn, "ft_doc", ["title", "body"])  # indexes the existing rows
        fulltext.create(conn, "ft_doc", ["title", "body"])  # idempotent
    with Session(engine) as session:
        def ids(text, match="all"):
            hits = fulltext.search(session, docs, ["title", "body"], text, match=match)
            return [r for r, in session.execute(select(hits.c.id).order_by(hits.c.rank,
                                                                           hits.c.id))]

        assert ids("restarting routers") == [1]  # stemmed, title and body
        assert ids("jam") == [2]
        assert ids("router paper") == []
        assert sorted(ids("router paper", match="any")) == [1, 2]
        assert ids("") == [] and ids("  ***  ") == []
        assert ids('paper" OR "x') == []  # words only, no query syntax
        session.execute(insert(docs).values(id=3, title="Scanners", body="Scanner jams"))
        session.execute(update(docs).where(docs.c.id == 2).values(body="Toner low"))
        session.execute(docs.delete().where(docs.c.id == 1))
        session.commit()
        assert ids("jams") == [3]
        assert ids("toner") == [2]
        assert ids("router") == []
        with pytest.raises(ValueError):
            fulltext.search(session, docs, ["title; drop table x"], "a")
        with pytest.raises(ValueError):
            fulltext.search(session, docs, ["title"], "a", match="some")
    with engine.begin() as conn:
        fulltext.drop(conn, "ft_doc")
        fulltext.drop(conn, "ft_doc")  # idempotent
    meta.drop_all(engine)
