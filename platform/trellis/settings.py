"""Plugin settings: declared by a marshmallow schema, validated, stored in the database."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, ValidationError

from trellis.db import db
from trellis.models import PluginSetting


class SettingsError(Exception):
    """The plugin has no settings schema."""


def _schema(plugin: str) -> Schema:
    schema_cls = current_app.extensions["trellis"].settings_schemas.get(plugin)
    if schema_cls is None:
        raise SettingsError(f"plugin {plugin!r} has no settings")
    return schema_cls()


def get_settings(plugin: str) -> dict[str, Any]:
    """The plugin's settings: stored values over the schema's defaults."""
    schema = _schema(plugin)
    row = db.session.get(PluginSetting, plugin)
    stored = dict(row.values) if row is not None else {}
    known = {k: v for k, v in stored.items() if k in schema.fields}
    try:
        return schema.load(known)
    except ValidationError:
        # Stored values that a newer schema rejects fall back to the defaults.
        return schema.load({})


def update_settings(plugin: str, data: dict[str, Any]) -> dict[str, Any]:
    """Validate ``data`` (a partial update) and store it.

    Raises :class:`marshmallow.ValidationError` with per-field messages; nothing
    is stored then.
    """
    schema = _schema(plugin)
    current = schema.dump(get_settings(plugin))
    merged = {**current, **data}
    values = schema.load(merged)  # raises ValidationError naming each field
    row = db.session.get(PluginSetting, plugin)
    if row is None:
        row = PluginSetting(plugin=plugin)
        db.session.add(row)
    row.values = schema.dump(values)
    db.session.commit()
    return values
