"""FAB's SQLAlchemy interface, tuned for tables with millions of rows."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_appbuilder.models.sqla import filters as fab
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import func, select


def _literal(fab_filter: type, match: str, negate: bool = False) -> type:
    """FAB's text filter ``fab_filter`` with ``%`` and ``_`` in the value matched
    literally (FAB passes them to LIKE as wildcards: "contains _" matched every row)."""

    def apply(self: Any, query: Any, value: Any) -> Any:
        query, field = fab.get_field_setup_query(query, self.model, self.column_name)
        condition = getattr(field, match)(value, autoescape=True)
        return query.filter(~condition if negate else condition)

    return type(fab_filter.__name__, (fab_filter,), {"apply": apply})


_LITERAL = {
    fab.FilterStartsWith: _literal(fab.FilterStartsWith, "istartswith"),
    fab.FilterNotStartsWith: _literal(fab.FilterNotStartsWith, "istartswith", negate=True),
    fab.FilterEndsWith: _literal(fab.FilterEndsWith, "iendswith"),
    fab.FilterNotEndsWith: _literal(fab.FilterNotEndsWith, "iendswith", negate=True),
    fab.FilterContains: _literal(fab.FilterContains, "icontains"),
    fab.FilterNotContains: _literal(fab.FilterNotContains, "icontains", negate=True),
}


class TrellisFilterConverter(fab.SQLAFilterConverter):
    """FAB's filters per column type, the text ones matching their value literally."""

    conversion_table = tuple(
        (kind, [_LITERAL.get(f, f) for f in filters])
        for kind, filters in fab.SQLAFilterConverter.conversion_table)


class TrellisSQLAInterface(SQLAInterface):
    """Counts at most ``TRELLIS_COUNT_CAP`` matching rows.

    FAB counts every matching row for every page; on a million rows that exact
    ``count(*)`` dominates the request.  Up to the cap the count is exact; past
    it the list reports ``cap + 1`` ("more than cap") and the API says so with
    ``count_capped``.  The cost is bounded by the cap, not the table.
    Text filters match ``%`` and ``_`` literally (:class:`TrellisFilterConverter`).
    """

    filter_converter_class = TrellisFilterConverter

    def query_count(self, query: Any, filters: Any = None, select_columns: Any = None) -> int:
        # The filters alone on the key: FAB's ``_apply_inner_all`` also builds a
        # ``load_only`` per selected column and the ordering, which the count
        # throws away (a fifth of a list request's time, bench/profile_api.py).
        cap = current_app.config.get("TRELLIS_COUNT_CAP", 10000)
        filtered = self.apply_filters(query, self.get_inner_filters(filters))
        key = self.obj.__mapper__.primary_key
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
