"""The migrations create exactly the schema the models declare (no drift)."""

from __future__ import annotations

import pytest

from trellis.testing import schema_drift

PLUGINS = ["sales", "service", "scoring", "marketing", "callnotes", "integrations"]


def drift(app) -> list:
    """Differences between the migrated database and the loaded models' tables."""
    return schema_drift(app)


def test_migrations_match_the_models_on_sqlite(trellis_app_factory):
    assert drift(trellis_app_factory(plugins=PLUGINS)) == []


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgres(trellis_app_factory, postgres_url):
    assert drift(trellis_app_factory(plugins=PLUGINS, database_url=postgres_url)) == []
