"""The company currency and exchange rates, for reports in one currency.

* The **company currency** is the core setting ``company_currency``
  (``Admin > Settings > core``, ``PUT /api/v1/settings/core``, ``trellis
  settings set core company_currency=EUR``); read it with
  :func:`company_currency`.
* An :class:`~trellis.models.ExchangeRate` ``(currency, rate, valid_from)`` says
  that one unit of ``currency`` is worth ``rate`` units of the company currency
  from ``valid_from`` on, until the next rate of that currency.
* :func:`in_company_currency` builds the SQL expression converting an amount
  column: ``amount × the rate valid on that day`` (a correlated subquery), the
  amount itself for the company currency, and ``NULL`` when no rate is valid
  on that day, so that reports can list unconverted amounts instead of
  silently dropping or mixing them.
* :func:`conversion` gives the same value for reports over many rows: a
  ``LEFT JOIN`` to the rate ranges (:func:`rate_ranges`) instead of a
  subquery, so each row's rate is looked up once however many aggregates use
  the converted amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Date, and_, case, func, literal, or_, select
from sqlalchemy.orm import object_session

from trellis.api import model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.models import ExchangeRate
from trellis.sqlfuncs import utc_day
from trellis.views import TrellisModelView

from trellis.core_settings import CURRENCY_CODE as CODE, CURRENCY_ERROR as CODE_ERROR


def company_currency() -> str:
    """The company currency (core setting ``company_currency``, default ``EUR``)."""
    from trellis.settings import get_settings

    return get_settings("core")["company_currency"]


def as_date(value: Any) -> Any:
    """A SQL ``DATE`` from a date or timestamp column, or from a Python date/datetime
    (a timestamp counts on its UTC day)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return literal(aware.astimezone(timezone.utc).date(), Date())
    if isinstance(value, date):
        return literal(value, Date())
    if isinstance(getattr(value, "type", None), Date):
        return value
    return utc_day(value)


def rate_on(currency: Any, on_date: Any) -> Any:
    """Scalar subquery: the rate of ``currency`` valid on ``on_date`` (latest
    ``valid_from <= on_date``), ``NULL`` when there is none."""
    return (select(ExchangeRate.rate)
            .where(ExchangeRate.currency == currency, ExchangeRate.valid_from <= as_date(on_date))
            .order_by(ExchangeRate.valid_from.desc())
            .limit(1)
            .correlate_except(ExchangeRate)
            .scalar_subquery())


def in_company_currency(amount_col: Any, currency_col: Any, on_date_col: Any,
                        company: str | None = None) -> Any:
    """SQL: ``amount_col`` in the company currency at the rate valid on ``on_date_col``.

    The company currency itself converts at 1; an amount whose currency has no
    rate valid on that day (or whose date is ``NULL``) gives ``NULL``.  Works on
    SQLite and PostgreSQL; ``on_date_col`` may be a date or timestamp column, or
    a Python ``date``/``datetime``.  ``company`` defaults to :func:`company_currency`.
    """
    company = company or company_currency()
    return case((currency_col == company, amount_col),
                else_=amount_col * rate_on(currency_col, on_date_col))


def rate_ranges() -> Any:
    """Subquery ``(currency, rate, valid_from, valid_to)``: each exchange rate with
    the day its currency's next rate starts (``valid_to``, exclusive; ``NULL``
    for the latest).  A window function (``lead()``): PostgreSQL, SQLite ≥ 3.25."""
    r = ExchangeRate
    return select(r.currency.label("currency"), r.rate.label("rate"),
                  r.valid_from.label("valid_from"),
                  func.lead(r.valid_from).over(partition_by=r.currency,
                                               order_by=r.valid_from).label("valid_to")
                  ).subquery()


@dataclass(frozen=True)
class Conversion:
    """A conversion to the company currency by a join (see :func:`conversion`).

    ``value`` is the converted amount (``NULL`` when no rate is valid on that
    day, as :func:`in_company_currency`); it is only valid in a statement that
    joined the rates with :meth:`join`.
    """

    rates: Any
    onclause: Any
    value: Any

    def join(self, stmt: Any) -> Any:
        """``stmt`` with a ``LEFT OUTER JOIN`` to the rate valid on the row's day
        (at most one row per row: the ranges of a currency do not overlap)."""
        return stmt.outerjoin(self.rates, self.onclause)


def conversion(amount_col: Any, currency_col: Any, on_date_col: Any,
               company: str | None = None) -> Conversion:
    """``amount_col`` in the company currency at the rate valid on ``on_date_col``,
    for reports: the same value as :func:`in_company_currency`, but read from a
    ``LEFT JOIN`` to :func:`rate_ranges` (``valid_from <= day < valid_to``), so
    the rate of each row is looked up once, however many aggregates use the
    value (a correlated subquery runs once per reference on PostgreSQL when
    the select holding it is flattened into the aggregate).  Join it with
    :meth:`Conversion.join`; a statement converting on two different days
    needs two conversions.
    """
    company = company or company_currency()
    rates = rate_ranges()
    day = as_date(on_date_col)
    onclause = and_(rates.c.currency == currency_col, rates.c.valid_from <= day,
                    or_(rates.c.valid_to.is_(None), rates.c.valid_to > day))
    value = case((currency_col == company, amount_col), else_=amount_col * rates.c.rate)
    return Conversion(rates, onclause, value)


# ------------------------------------------------------------------ rules


def rate_validate(rate: ExchangeRate) -> dict[str, list[str]]:
    """Model rule of :class:`ExchangeRate`, run on every save."""
    import re

    errors: dict[str, list[str]] = {}
    code = rate.currency or ""
    if not re.match(CODE, code):
        errors["currency"] = [CODE_ERROR]
    else:
        company = company_currency()
        if code == company:
            errors["currency"] = [f"{company} is the company currency: it needs no rate."]
    if rate.rate is None or Decimal(str(rate.rate)) <= 0:
        errors["rate"] = ["Must be greater than 0."]
    if rate.valid_from is None:
        errors["valid_from"] = ["Missing data for required field."]
    elif "currency" not in errors:
        session = object_session(rate)
        with session.no_autoflush:
            other = session.scalar(select(ExchangeRate.id).where(
                ExchangeRate.currency == code, ExchangeRate.valid_from == rate.valid_from,
                ExchangeRate.id != (rate.id or 0)).limit(1))
        if other is not None:
            errors["valid_from"] = [f"There is already a {code} rate from "
                                    f"{rate.valid_from.isoformat()}."]
    return errors


class ExchangeRateSchema(Schema):
    """Input rules checked by the API before the model rules (same messages)."""

    currency = fields.String(required=True, validate=validate.Regexp(CODE, error=CODE_ERROR))
    rate = fields.Decimal(required=True, validate=validate.Range(
        min=0, min_inclusive=False, error="Must be greater than 0."))
    valid_from = fields.Date(required=True)


# ------------------------------------------------------------------ view & API


class ExchangeRateView(TrellisModelView):
    datamodel = TrellisSQLAInterface(ExchangeRate)
    list_columns = ["currency", "rate", "valid_from"]
    add_columns = edit_columns = show_columns = ["currency", "rate", "valid_from"]
    search_columns = ["currency", "valid_from"]
    base_order = ("valid_from", "desc")
    description_columns = {
        "currency": "ISO 4217 code, e.g. USD",
        "rate": "what one unit of the currency is worth in the company currency",
        "valid_from": "the rate applies from this day until the currency's next rate",
    }


ExchangeRateApi = model_api(ExchangeRate, "exchange_rate", ["currency", "rate", "valid_from"],
                            schema=ExchangeRateSchema, tag="Exchange rates")
