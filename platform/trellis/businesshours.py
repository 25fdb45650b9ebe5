"""Business-hours arithmetic on a :class:`~trellis.models.BusinessCalendar`.

A calendar has working days (ISO weekdays), local opening hours (``day_start``
to ``day_end``, ``"HH:MM"``), holidays and a time zone.  SLAs (a lead's first
response, a ticket's resolution) count only the time the calendar is open:

* :func:`add_business_hours` — the moment ``hours`` business hours after ``start``;
* :func:`business_hours_between` — how many business hours lie between two moments;
* :func:`default_calendar` — the calendar marked default, else Mon–Fri 09:00–17:00 UTC.

Opening hours are local wall-clock times, turned into real instants day by day
with :mod:`zoneinfo`, so a day on which the clocks change still opens at 09:00
local time, and an hour is always a real hour.  Naive datetimes are taken as
UTC; results are timezone-aware, in UTC.

The module is named ``businesshours`` (not ``calendar``) so it can never shadow
the standard library's :mod:`calendar`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

__all__ = ["add_business_hours", "business_hours_between", "default_calendar",
           "validate_calendar", "DEFAULT"]

#: How far ahead (in days) arithmetic looks for opening hours before giving up.
MAX_DAYS = 3 * 366
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _holidays(cal: Any) -> set[date]:
    return {h.day if hasattr(h, "day") else h for h in (getattr(cal, "holidays", None) or ())}


def _work_days(cal: Any) -> set[int]:
    return {int(d) for d in str(cal.work_days or "").split(",") if d.strip()}


def _openings(cal: Any, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The calendar's open intervals (UTC) from the local day of ``start`` on."""
    tz = ZoneInfo(cal.timezone or "UTC")
    opens, closes = _hhmm(cal.day_start), _hhmm(cal.day_end)
    work_days, holidays = _work_days(cal), _holidays(cal)
    if not work_days or opens >= closes:
        raise ValueError(f"calendar {getattr(cal, 'name', '')!r} is never open")
    day = start.astimezone(tz).date()
    for _ in range(MAX_DAYS):
        if day.isoweekday() in work_days and day not in holidays:
            yield (datetime.combine(day, opens, tzinfo=tz).astimezone(timezone.utc),
                   datetime.combine(day, closes, tzinfo=tz).astimezone(timezone.utc))
        day += timedelta(days=1)
    raise ValueError(f"calendar {getattr(cal, 'name', '')!r} has no opening hours "
                     f"within {MAX_DAYS} days")


def add_business_hours(cal: Any, start: datetime, hours: float) -> datetime:
    """The instant ``hours`` business hours after ``start`` (UTC, aware).

    A start outside opening hours counts from the next opening; a result that
    lands exactly on closing time stays there (due 17:00, not 09:00 next day).
    ``hours`` may be fractional; ``0`` returns ``start``.
    """
    if hours < 0:
        raise ValueError("hours must not be negative")
    start = _aware(start).astimezone(timezone.utc)
    if hours == 0:
        return start
    remaining = timedelta(hours=hours)
    for opens, closes in _openings(cal, start):
        begin = max(opens, start)
        if begin >= closes:
            continue
        if closes - begin >= remaining:
            return begin + remaining
        remaining -= closes - begin
    raise AssertionError("unreachable")  # pragma: no cover - _openings raises


def business_hours_between(cal: Any, start: datetime, end: datetime) -> float:
    """Business hours from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    start, end = _aware(start), _aware(end)
    if end < start:
        return -business_hours_between(cal, end, start)
    total = timedelta()
    for opens, closes in _openings(cal, start):
        if opens >= end:
            break
        begin, finish = max(opens, start), min(closes, end)
        if finish > begin:
            total += finish - begin
    return total.total_seconds() / 3600


class _Calendar:
    """A calendar that is not in the database (the built-in default)."""

    def __init__(self, name: str, timezone: str, work_days: str, day_start: str,
                 day_end: str) -> None:
        self.id = None
        self.name, self.timezone, self.work_days = name, timezone, work_days
        self.day_start, self.day_end = day_start, day_end
        self.is_default = True
        self.holidays: list[Any] = []

    def __repr__(self) -> str:
        return self.name


#: Used when no calendar is marked default: Monday to Friday, 09:00–17:00 UTC.
DEFAULT = _Calendar("Default (Mon–Fri 09:00–17:00 UTC)", "UTC", "1,2,3,4,5", "09:00", "17:00")


def default_calendar(session: Any) -> Any:
    """The calendar marked ``is_default`` (lowest id first), else :data:`DEFAULT`."""
    from trellis.models import BusinessCalendar

    with session.no_autoflush:
        cal = session.scalars(select(BusinessCalendar).where(
            BusinessCalendar.is_default.is_(True)).order_by(BusinessCalendar.id)).first()
    return cal if cal is not None else DEFAULT


# ------------------------------------------------------------------ validation


def _zone_exists(name: str) -> bool:
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def validate_calendar(cal: Any) -> dict[str, list[str]]:
    """Field errors of a calendar (``ModelSpec.validate`` of ``BusinessCalendar``)."""
    from sqlalchemy.orm import object_session
    from sqlalchemy.orm.exc import UnmappedInstanceError

    from trellis.models import BusinessCalendar

    errors: dict[str, list[str]] = {}
    try:
        session = object_session(cal)
    except UnmappedInstanceError:  # a plain object (tests, previews): no session
        session = None
    if not (cal.name or "").strip():
        errors["name"] = ["Must not be empty."]
    elif session is not None:
        with session.no_autoflush:
            stmt = select(BusinessCalendar.id).where(BusinessCalendar.name == cal.name)
            if cal.id is not None:
                stmt = stmt.where(BusinessCalendar.id != cal.id)
            if session.scalar(stmt.limit(1)) is not None:
                errors["name"] = [f"A calendar named {cal.name!r} already exists."]
    if not _zone_exists(cal.timezone or ""):
        errors["timezone"] = [f"Unknown time zone {cal.timezone!r}; use an IANA name such "
                              "as Europe/Berlin."]
    times = {}
    for field in ("day_start", "day_end"):
        value = getattr(cal, field)
        if not isinstance(value, str) or not HHMM.match(value):
            errors[field] = ["Use HH:MM (24-hour), e.g. 09:00."]
        else:
            times[field] = value
    if len(times) == 2 and times["day_start"] >= times["day_end"]:
        errors["day_end"] = ["Must be later than the opening time."]
    parts = [p.strip() for p in str(cal.work_days or "").split(",")]
    if not cal.work_days or not all(p.isdigit() and 1 <= int(p) <= 7 for p in parts):
        errors["work_days"] = ["Comma-separated ISO weekdays from 1 (Monday) to 7 (Sunday), "
                               "e.g. 1,2,3,4,5."]
    elif len(set(parts)) != len(parts):
        errors["work_days"] = ["Each weekday only once."]
    return errors


def calendar_before_save(session: Any, cal: Any, action: str) -> None:
    """Tidy the input: ``" 1, 2 "`` -> ``"1,2"``; one default calendar at a time."""
    if action == "deleted":
        return
    for field, value in (("timezone", "UTC"), ("work_days", "1,2,3,4,5"),
                         ("day_start", "09:00"), ("day_end", "17:00"), ("is_default", False)):
        if getattr(cal, field) is None:
            setattr(cal, field, value)
    if isinstance(cal.work_days, str):
        cal.work_days = ",".join(p.strip() for p in cal.work_days.split(",") if p.strip())
    if isinstance(cal.timezone, str):
        cal.timezone = cal.timezone.strip()
    if cal.is_default:
        from sqlalchemy import update

        from trellis.models import BusinessCalendar

        stmt = update(BusinessCalendar).where(BusinessCalendar.is_default.is_(True))
        if cal.id is not None:
            stmt = stmt.where(BusinessCalendar.id != cal.id)
        session.execute(stmt.values(is_default=False), execution_options={
            "synchronize_session": False})


def holiday_validate(holiday: Any) -> dict[str, list[str]]:
    """One holiday per calendar and day (a clear 400, not a constraint error)."""
    from sqlalchemy.orm import object_session

    from trellis.models import Holiday

    session = object_session(holiday)
    calendar_id = holiday.calendar.id if holiday.calendar is not None else holiday.calendar_id
    if session is None or holiday.day is None or calendar_id is None:
        return {}
    with session.no_autoflush:
        stmt = select(Holiday.id).where(Holiday.calendar_id == calendar_id,
                                        Holiday.day == holiday.day)
        if holiday.id is not None:
            stmt = stmt.where(Holiday.id != holiday.id)
        if session.scalar(stmt.limit(1)) is not None:
            return {"day": [f"{holiday.day} is already a holiday in this calendar."]}
    return {}


# ------------------------------------------------------------------ admin view and REST API
# Registered by the core (core_plugin.py) under Admin > Business calendars; only
# admins hold core.BusinessCalendar / core.Holiday, so only they read and write.

from wtforms.validators import Regexp  # noqa: E402

from trellis.api import model_api  # noqa: E402
from trellis.datamodel import TrellisSQLAInterface  # noqa: E402
from trellis.models import BusinessCalendar, Holiday  # noqa: E402
from trellis.views import TrellisModelView  # noqa: E402

_HHMM_FIELD = [Regexp(HHMM.pattern, message="Use HH:MM (24-hour), e.g. 09:00.")]


class HolidayView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Holiday)
    list_columns = ["day", "name", "calendar"]
    add_columns = edit_columns = ["calendar", "day", "name"]
    base_order = ("day", "asc")


class BusinessCalendarView(TrellisModelView):
    """Admin > Business calendars: working days, hours, holidays and time zone."""

    datamodel = TrellisSQLAInterface(BusinessCalendar)
    list_columns = ["name", "timezone", "work_days", "day_start", "day_end", "is_default"]
    add_columns = edit_columns = show_columns = list_columns
    description_columns = {
        "timezone": "IANA time zone, e.g. Europe/Berlin",
        "work_days": "ISO weekdays, 1 = Monday … 7 = Sunday, e.g. 1,2,3,4,5",
        "day_start": "opening time, HH:MM local time",
        "day_end": "closing time, HH:MM local time",
        "is_default": "the calendar SLAs use unless told otherwise",
    }
    validators_columns = {"day_start": _HHMM_FIELD, "day_end": _HHMM_FIELD}
    related_views = [HolidayView]


CALENDAR_COLUMNS = ["name", "timezone", "work_days", "day_start", "day_end", "is_default"]
BusinessCalendarApi = model_api(BusinessCalendar, "calendar", CALENDAR_COLUMNS,
                                tag="Business calendars",
                                optional_columns=["timezone", "work_days", "day_start",
                                                  "day_end", "is_default"])
HolidayApi = model_api(Holiday, "holiday", ["calendar_id", "day", "name"], tag="Holidays",
                       optional_columns=["name"])
