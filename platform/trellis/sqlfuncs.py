"""SQL expressions that read the same on SQLite and PostgreSQL, for reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, DateTime, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal


class month_bucket(FunctionElement):  # noqa: N801 - used like a SQL function
    """``'YYYY-MM'`` of a date or timestamp column (``None`` stays ``None``)."""

    type = String()
    inherit_cache = True
    name = "month_bucket"


@compiles(month_bucket, "postgresql")
def _month_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return "to_char(%s, 'YYYY-MM')" % compiler.process(element.clauses, **kw)


@compiles(month_bucket, "sqlite")
def _month_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return "strftime('%%Y-%%m', %s)" % compiler.process(element.clauses, **kw)


class utc_day(FunctionElement):  # noqa: N801 - used like a SQL function
    """The UTC calendar day of a timestamp column, as a ``DATE`` (``None`` stays ``None``)."""

    type = Date()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day, "postgresql")
def _utc_day_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return "CAST(timezone('UTC', %s) AS DATE)" % compiler.process(element.clauses, **kw)


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return "date(%s)" % compiler.process(element.clauses, **kw)


class days_between(FunctionElement):  # noqa: N801 - used like a SQL function
    """``days_between(start, end)``: fractional days from one timestamp to another."""

    type = Float()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "postgresql")
def _days_pg(element: Any, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return "(EXTRACT(EPOCH FROM (%s - %s)) / 86400.0)" % (
        compiler.process(end, **kw), compiler.process(start, **kw))


@compiles(days_between, "sqlite")
def _days_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return "(julianday(%s) - julianday(%s))" % (
        compiler.process(end, **kw), compiler.process(start, **kw))


class utc_midnight(FunctionElement):  # noqa: N801 - used like a SQL function
    """``utc_midnight(day_col, days=0)``: midnight UTC at the start of the ``DATE``
    ``day_col`` plus ``days`` days, as a timestamp comparable with timestamp
    columns (``won_at >= utc_midnight(start) AND won_at < utc_midnight(end, 1)``
    is "won on a UTC day from start to end", and can use an index on ``won_at``).
    """

    type = DateTime(timezone=True)
    inherit_cache = True
    name = "utc_midnight"
    # ``days`` is part of the SQL text: part of the statement cache key too
    _traverse_internals = [*FunctionElement._traverse_internals,
                           ("days", InternalTraversal.dp_plain_obj)]

    def __init__(self, day: Any, days: int = 0) -> None:
        self.days = int(days)
        super().__init__(day)


@compiles(utc_midnight, "postgresql")
def _midnight_pg(element: Any, compiler: Any, **kw: Any) -> str:
    day = "CAST(%s AS DATE)" % compiler.process(element.clauses, **kw)
    if element.days:
        day = "(%s + %d)" % (day, element.days)
    return "timezone('UTC', CAST(%s AS TIMESTAMP))" % day


@compiles(utc_midnight, "sqlite")
def _midnight_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # timestamps are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): compared as text
    return "datetime(%s, '%+d days')" % (compiler.process(element.clauses, **kw),
                                          element.days)


class utc_minute(FunctionElement):  # noqa: N801 - used like a SQL function
    """``'YYYY-MM-DD HH:MM'`` (UTC) of a timestamp column."""

    type = String()
    inherit_cache = True
    name = "utc_minute"


@compiles(utc_minute, "postgresql")
def _utc_minute_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return "to_char(timezone('UTC', %s), 'YYYY-MM-DD HH24:MI')" % compiler.process(
        element.clauses, **kw)


@compiles(utc_minute, "sqlite")
def _utc_minute_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return "strftime('%%Y-%%m-%%d %%H:%%M', %s)" % compiler.process(element.clauses, **kw)


BUCKETS = ("day", "week", "month", "quarter", "year")


class date_bucket(FunctionElement):  # noqa: N801 - used like a SQL function
    """``date_bucket(column, unit)``: the UTC period a date or timestamp falls in, as
    sortable text: ``day`` ``'2024-03-05'``, ``week`` the ISO week's Monday
    ``'2024-03-04'``, ``month`` ``'2024-03'``, ``quarter`` ``'2024-Q1'``, ``year``
    ``'2024'`` (``None`` stays ``None``).  The report builder groups by it."""

    type = String()
    inherit_cache = True
    name = "date_bucket"
    _traverse_internals = [*FunctionElement._traverse_internals,
                           ("unit", InternalTraversal.dp_plain_obj)]

    def __init__(self, column: Any, unit: str) -> None:
        if unit not in BUCKETS:
            raise ValueError(f"unknown date bucket {unit!r}; use one of {', '.join(BUCKETS)}")
        self.unit = unit
        super().__init__(column)


def _is_aware_timestamp(element: Any) -> bool:
    column = list(element.clauses)[0]
    kind = getattr(column, "type", None)
    return isinstance(kind, DateTime) and bool(getattr(kind, "timezone", False))


@compiles(date_bucket, "postgresql")
def _bucket_pg(element: Any, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    if _is_aware_timestamp(element):
        value = "timezone('UTC', %s)" % value
    if element.unit == "week":
        return "to_char(date_trunc('week', %s), 'YYYY-MM-DD')" % value
    pattern = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q',
               "year": "YYYY"}[element.unit]
    return "to_char(%s, '%s')" % (value, pattern)


@compiles(date_bucket, "sqlite")
def _bucket_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # SQLite keeps timestamps as UTC text ('YYYY-MM-DD HH:MM:SS...')
    value = compiler.process(element.clauses, **kw)
    if element.unit == "day":
        return "date(%s)" % value
    if element.unit == "week":  # the next Sunday (or the day itself), minus six days
        return "date(%s, 'weekday 0', '-6 days')" % value
    if element.unit == "month":
        return "strftime('%%Y-%%m', %s)" % value
    if element.unit == "year":
        return "strftime('%%Y', %s)" % value
    return ("(strftime('%%Y', %s) || '-Q' || ((CAST(strftime('%%m', %s) AS INTEGER) + 2) / 3))"
            % (value, value))
