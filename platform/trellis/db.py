"""The SQLAlchemy handle shared by the core and every plugin.

Models subclass :class:`Model` (Flask-AppBuilder's declarative base, so they
share a metadata with FAB's security tables) and set ``__tablename__``.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

from flask_appbuilder import Model
from flask_appbuilder.utils.legacy import get_sqla_class

from trellis.session import TrellisSession

db = get_sqla_class()(session_options={"class_": TrellisSession})

__all__ = ["Model", "db", "utcnow"]


@sa_event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """SQLite ignores foreign keys (and ON DELETE CASCADE) unless asked per connection."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def utcnow() -> datetime:
    """Timezone-aware now, the default for every timestamp column."""
    return datetime.now(timezone.utc)
