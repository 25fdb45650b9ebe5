"""The service migrations create exactly the tables the models declare (besides
the full-text index trellis.fulltext adds), on SQLite and PostgreSQL, and
downgrade cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from trellis.db import db
from trellis.testing import schema_drift


def drift(app) -> list:
    return schema_drift(app)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_migrations_match_the_models(trellis_app_factory, request, database):
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    app = trellis_app_factory(plugins=["service"], database_url=url)
    assert drift(app) == []
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("service_article")}
    if database == "sqlite":
        assert "service_article_fts" in tables
    else:
        assert "ix_service_article_fulltext" in indexes
    # uninstalling runs every downgrade: nothing of the plugin is left
    from trellis import lifecycle

    with app.app_context():
        ext = app.extensions["trellis"]
        lifecycle.disable(ext, "service")
        lifecycle.uninstall(ext, "service")
        db.session.remove()
        left = {t for t in inspect(db.engine).get_table_names() if t.startswith("service_")}
    assert left == set()
