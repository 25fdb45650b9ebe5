"""SQL expressions that read the same on SQLite and PostgreSQL, for reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
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
