"""The migrations create exactly the schema the models declare (no drift)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from trellis.db import Model, db

PLUGINS = ["sales", "callnotes", "integrations"]


def drift(app) -> list:
    """Differences between the migrated database and the loaded models' tables."""
    ext = app.extensions["trellis"]
    with app.app_context(), db.engine.connect() as conn:
        loaded = {entry.model.__table__.name for entry in ext.registry}
        # a plugin's tables are named <plugin>_..., registered as models or not
        prefixes = tuple(f"{p.name}_" for p in ext.plugins.loaded() if p.name != "core")

        def ours(name: str) -> bool:
            # (the core's are always there)
            return name.startswith(("ab_", "trellis_", *prefixes)) or name in loaded

        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            # tables of plugins not loaded in this app (and of tests' throwaway
            # plugins) live in the same metadata: compare only this app's, both sides
            "include_name": lambda name, type_, parent: type_ != "table" or ours(name),
            "include_object": lambda obj, name, type_, reflected, other:
                type_ != "table" or ours(name),
        })
        return compare_metadata(context, Model.metadata)


def test_migrations_match_the_models_on_sqlite(trellis_app_factory):
    assert drift(trellis_app_factory(plugins=PLUGINS)) == []


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgres(trellis_app_factory, postgres_url):
    assert drift(trellis_app_factory(plugins=PLUGINS, database_url=postgres_url)) == []
