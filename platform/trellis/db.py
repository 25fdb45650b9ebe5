"""The SQLAlchemy handle shared by the core and every plugin.

Models subclass :class:`Model` (Flask-AppBuilder's declarative base, so they
share a metadata with FAB's security tables) and set ``__tablename__``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask_appbuilder import Model
from flask_appbuilder.utils.legacy import get_sqla_class

from trellis.session import TrellisSession

db = get_sqla_class()(session_options={"class_": TrellisSession})

__all__ = ["Model", "db", "utcnow"]


def utcnow() -> datetime:
    """Timezone-aware now, the default for every timestamp column."""
    return datetime.now(timezone.utc)
