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

    def _orderable(self, column: str) -> bool:
        """A mapped column of the model (or ``relation.column``, or a custom
        field): what SQL can sort."""
        from sqlalchemy.orm import QueryableAttribute

        from trellis import customfields

        if column.startswith(customfields.PREFIX):
            return True  # apply_order_by checks the field exists
        head, _, sub = column.partition(".")
        if sub:
            return self.is_relation(head) and isinstance(
                getattr(self.get_related_model(head), sub, None), QueryableAttribute)
        return not self.is_relation(column) and isinstance(
            getattr(self.obj, column, None), QueryableAttribute)

    def get_order_columns_list(self, list_columns: list[str] | None = None) -> list[str]:
        """FAB's sortable columns without Python properties (``sla_state``): SQL
        cannot sort by them, and FAB offered them as sort links."""
        return [c for c in super().get_order_columns_list(list_columns) if self._orderable(c)]

    def is_nullable(self, col_name: str) -> bool:
        """A checkbox always has a value: FAB would make a ``NOT NULL`` boolean
        *required*, refusing every unticked box."""
        if self.is_boolean(col_name):
            return True
        return super().is_nullable(col_name)

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
        for callers that pass no filters (FAB's actions).  Its custom field values
        are attached (``item.cf_<key>``)."""
        from trellis import customfields, rules

        item = super().get(id, *args, **kwargs)
        if item is None or not rules.may_see(item):
            return None
        if "_trellis_custom_loaded" not in item.__dict__:
            customfields.load_page(self.session, self.obj, [item])
        return item

    def query(self, *args: Any, **kwargs: Any) -> Any:
        """FAB's query; the page's custom field values attached in one query."""
        from trellis import customfields

        count, items = super().query(*args, **kwargs)
        customfields.load_page(self.session, self.obj, items)
        return count, items

    def apply_order_by(self, query: Any, order_column: str, order_direction: str,
                       *args: Any, **kwargs: Any) -> Any:
        """FAB's order, or a custom field's (a ``LEFT JOIN`` on its values)."""
        from trellis import customfields

        if order_column.startswith(customfields.PREFIX):
            name = customfields.model_name(self.obj)
            defn = customfields.field(name, order_column) if name else None
            if defn is not None:
                return customfields.order_by(query, self.obj, defn, order_direction)
            order_column = ""
        if order_column and not self._orderable(order_column):
            order_column = ""  # a hand-made ``_oc_`` naming a property: ignored, not a 500
        return super().apply_order_by(query, order_column, order_direction, *args, **kwargs)

    def add(self, item: Any, commit: bool = True) -> None:
        self._stage_custom(item)
        self._saving(lambda: super(TrellisSQLAInterface, self).add(item, commit))

    def edit(self, item: Any, commit: bool = True) -> None:
        self._stage_custom(item)
        self._saving(lambda: super(TrellisSQLAInterface, self).edit(item, commit))

    def _stage_custom(self, item: Any) -> None:
        """Custom values given with the record (the API's parsed ``cf_*`` keys, or
        what a form set on it) are written when it commits, in its transaction."""
        from flask import g

        from trellis import customfields

        values = g.pop("trellis_custom_values", None)
        if values is None:
            name = customfields.model_name(self.obj)
            changed = customfields.attached_changes(item)
            if name and changed:
                values, _ = customfields.load(name, changed, partial=True)
        if values:
            customfields.stage(self.session, item, values)

    def _saving(self, write: Any) -> None:
        from trellis.validation import RecordInvalid

        try:
            write()
        except RecordInvalid:
            self.session.rollback()
            raise
