"""SQL expressions that read the same on SQLite and PostgreSQL, for reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


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
