"""FAB's SQLAlchemy interface, tuned for tables with millions of rows."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import func, select


class TrellisSQLAInterface(SQLAInterface):
    """Counts at most ``TRELLIS_COUNT_CAP`` matching rows.

    FAB counts every matching row for every page; on a million rows that exact
    ``count(*)`` dominates the request.  Up to the cap the count is exact; past
    it the list reports ``cap + 1`` ("more than cap") and the API says so with
    ``count_capped``.  The cost is bounded by the cap, not the table.
    """

    def query_count(self, query: Any, filters: Any = None, select_columns: Any = None) -> int:
        cap = current_app.config.get("TRELLIS_COUNT_CAP", 10000)
        filtered = self._apply_inner_all(
            query, filters, select_columns=select_columns, aliases_mapping={}
        )
        key = self.obj.__mapper__.primary_key  # the key alone: no per-column loader options
        limited = filtered.with_entities(*key).order_by(None).limit(cap + 1).subquery()
        return self.session.execute(select(func.count()).select_from(limited)).scalar_one()

    def get(self, id: Any, *args: Any, **kwargs: Any) -> Any:
        """A record by key, or ``None`` when the user's record rule hides it — also
        for callers that pass no filters (FAB's actions)."""
        from trellis import rules

        item = super().get(id, *args, **kwargs)
        return item if item is None or rules.may_see(item) else None

    def add(self, item: Any, commit: bool = True) -> None:
        self._saving(lambda: super(TrellisSQLAInterface, self).add(item, commit))

    def edit(self, item: Any, commit: bool = True) -> None:
        self._saving(lambda: super(TrellisSQLAInterface, self).edit(item, commit))

    def _saving(self, write: Any) -> None:
        from trellis.validation import RecordInvalid

        try:
            write()
        except RecordInvalid:
            self.session.rollback()
            raise
