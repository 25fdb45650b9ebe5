"""The migrations create exactly the schema the models declare (no drift)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from trellis.db import Model, db

PLUGINS = ["sales", "callnotes"]


def drift(app) -> list:
    """Differences between the migrated database and the loaded models' tables."""
    ext = app.extensions["trellis"]
    with app.app_context(), db.engine.connect() as conn:
        loaded = {entry.model.__table__.name for entry in ext.registry}
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            # tables of plugins not loaded in this app live in the same metadata
            "include_name": lambda name, type_, parent: type_ != "table"
            # (the core's are always there)
            or name.startswith(("ab_", "trellis_")) or name in loaded,
        })
        return compare_metadata(context, Model.metadata)


def test_migrations_match_the_models_on_sqlite(trellis_app_factory):
    assert drift(trellis_app_factory(plugins=PLUGINS)) == []


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgres(trellis_app_factory, postgres_url):
    assert drift(trellis_app_factory(plugins=PLUGINS, database_url=postgres_url)) == []
