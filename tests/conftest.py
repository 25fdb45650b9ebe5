"""Shared test set-up: the fixtures come from trellis.testing (a pytest plugin)."""

import pytest

ALL_PLUGINS = ["sales", "service", "scoring", "marketing", "integrations"]


@pytest.fixture
def all_plugins_app(trellis_app_factory):
    """An app with the five capability plugins installed and enabled."""
    return trellis_app_factory(plugins=ALL_PLUGINS)
