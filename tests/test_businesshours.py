"""Business-hours arithmetic (trellis.businesshours) and the calendar admin API."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from trellis.businesshours import (
    DEFAULT,
    add_business_hours,
    business_hours_between,
    default_calendar,
    validate_calendar,
)
from trellis.db import db
from trellis.models import BusinessCalendar, Holiday

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def cal(tz="UTC", days="1,2,3,4,5", start="09:00", end="17:00", holidays=()):
    return SimpleNamespace(name="test", timezone=tz, work_days=days, day_start=start,
                           day_end=end, holidays=[SimpleNamespace(day=d) for d in holidays])


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# 2026-11-23 is a Monday.
MON = (2026, 11, 23)


@pytest.mark.parametrize("start, hours, due", [
    (utc(*MON, 10), 4, utc(*MON, 14)),                       # same day
    (utc(*MON, 13), 4, utc(*MON, 17)),                       # ends exactly at closing
    (utc(*MON, 15), 4, utc(2026, 11, 24, 11)),               # overnight
    (utc(2026, 11, 27, 15), 4, utc(2026, 11, 30, 11)),       # Friday -> Monday
    (utc(*MON, 7), 1, utc(*MON, 10)),                        # before opening
    (utc(*MON, 20), 1, utc(2026, 11, 24, 10)),               # after closing
    (utc(2026, 11, 28, 12), 1, utc(2026, 11, 30, 10)),       # Saturday
    (utc(*MON, 16, 30), 1.25, utc(2026, 11, 24, 9, 45)),     # fractional
    (utc(*MON, 9), 40, utc(2026, 11, 27, 17)),               # a whole week
    (utc(*MON, 9), 40.5, utc(2026, 11, 30, 9, 30)),          # ... and a bit
    (utc(*MON, 11), 0, utc(*MON, 11)),
])
def test_add_business_hours(start, hours, due):
    assert add_business_hours(cal(), start, hours) == due


def test_holidays_are_skipped():
    holidays = cal(holidays=[date(2026, 11, 30), date(2026, 12, 1)])  # Mon, Tue
    assert add_business_hours(holidays, utc(2026, 11, 27, 16), 2) == utc(2026, 12, 2, 10)
    assert business_hours_between(holidays, utc(2026, 11, 27, 16),
                                  utc(2026, 12, 2, 10)) == 2
    # a holiday is also skipped when the start lies on it
    assert add_business_hours(holidays, utc(2026, 11, 30, 10), 1) == utc(2026, 12, 2, 10)


def test_opening_hours_are_local_time():
    berlin = cal("Europe/Berlin")
    # 09:00 in Berlin is 08:00 UTC in winter
    assert add_business_hours(berlin, utc(*MON, 7), 1) == utc(*MON, 9)
    ny = cal("America/New_York")
    # Monday 16:00 UTC is 11:00 in New York: 6 hours left that day, 2 on Tuesday
    assert add_business_hours(ny, utc(*MON, 16), 8) == datetime(
        2026, 11, 24, 11, tzinfo=ZoneInfo("America/New_York"))


def test_dst_change_over_a_weekend():
    berlin = cal("Europe/Berlin")
    # Summer time ends on Sunday 2026-10-25: Friday CEST (+2), Monday CET (+1).
    start = datetime(2026, 10, 23, 16, tzinfo=BERLIN)
    due = add_business_hours(berlin, start, 2)
    assert due == datetime(2026, 10, 26, 10, tzinfo=BERLIN)
    assert due == utc(2026, 10, 26, 9)
    assert business_hours_between(berlin, start, due) == 2
    # Summer time starts on Sunday 2026-03-29.
    start = datetime(2026, 3, 27, 16, tzinfo=BERLIN)
    assert add_business_hours(berlin, start, 2) == utc(2026, 3, 30, 8)


def test_dst_change_inside_opening_hours_counts_real_hours():
    always = cal("Europe/Berlin", days="1,2,3,4,5,6,7", start="00:00", end="23:59")
    # 2026-10-25 has 25 hours in Berlin: 00:00 -> 12:00 local is 13 real hours
    assert business_hours_between(always, datetime(2026, 10, 25, 0, tzinfo=BERLIN),
                                  datetime(2026, 10, 25, 12, tzinfo=BERLIN)) == 13
    # 2026-03-29 has 23: 00:00 -> 12:00 local is 11 real hours
    assert business_hours_between(always, datetime(2026, 3, 29, 0, tzinfo=BERLIN),
                                  datetime(2026, 3, 29, 12, tzinfo=BERLIN)) == 11
    assert add_business_hours(always, datetime(2026, 3, 29, 0, tzinfo=BERLIN), 11) == \
        datetime(2026, 3, 29, 12, tzinfo=BERLIN)


def test_business_hours_between():
    c = cal()
    assert business_hours_between(c, utc(*MON, 10), utc(*MON, 12, 30)) == 2.5
    assert business_hours_between(c, utc(2026, 11, 27, 15), utc(2026, 11, 30, 11)) == 4
    assert business_hours_between(c, utc(*MON, 18), utc(2026, 11, 24, 8)) == 0
    assert business_hours_between(c, utc(*MON, 12), utc(*MON, 10)) == -2
    assert business_hours_between(c, utc(*MON, 9), utc(2026, 11, 30, 9)) == 40
    # naive datetimes are UTC
    assert business_hours_between(c, datetime(*MON, 10), datetime(*MON, 11)) == 1
    assert add_business_hours(c, datetime(*MON, 10), 1) == utc(*MON, 11)


def test_add_and_between_agree():
    rng = random.Random(7)
    calendars = [cal(), cal("Europe/Berlin", holidays=[date(2026, 10, 26)]),
                 cal("America/New_York", days="1,3,5", start="08:30", end="12:15"),
                 cal("Australia/Sydney", days="6,7", start="10:00", end="22:00")]
    for _ in range(300):
        c = rng.choice(calendars)
        start = utc(2026, 1, 1) + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        hours = rng.randrange(1, 200) / 4
        due = add_business_hours(c, start, hours)
        assert due >= start
        assert business_hours_between(c, start, due) == pytest.approx(hours)


def test_a_calendar_that_never_opens_is_an_error():
    with pytest.raises(ValueError):
        add_business_hours(cal(days=""), utc(*MON, 10), 1)
    with pytest.raises(ValueError):
        add_business_hours(cal(), utc(*MON, 10), -1)


def test_validate_calendar():
    assert validate_calendar(cal("Europe/Berlin")) == {}
    errors = validate_calendar(cal("Mars/Olympus", days="1,8", start="9:00", end="25:00"))
    assert set(errors) == {"timezone", "work_days", "day_start", "day_end"}
    assert validate_calendar(cal(start="17:00", end="09:00")) == {
        "day_end": ["Must be later than the opening time."]}
    assert "work_days" in validate_calendar(cal(days="1,1"))
    assert "timezone" in validate_calendar(cal("../../etc/passwd"))


# ------------------------------------------------------------------ database and API


@pytest.fixture
def app(trellis_app_factory):
    return trellis_app_factory()


def test_default_calendar(app):
    with app.app_context():
        assert default_calendar(db.session) is DEFAULT
        db.session.add(BusinessCalendar(name="Berlin", timezone="Europe/Berlin"))
        db.session.add(BusinessCalendar(name="Sydney", timezone="Australia/Sydney",
                                        is_default=True,
                                        holidays=[Holiday(day=date(2026, 12, 25))]))
        db.session.commit()
        chosen = default_calendar(db.session)
        assert chosen.name == "Sydney"
        assert [h.day for h in chosen.holidays] == [date(2026, 12, 25)]
        # marking another one default unmarks the first
        berlin = db.session.scalars(db.select(BusinessCalendar).filter_by(name="Berlin")).one()
        berlin.is_default = True
        db.session.commit()
        assert default_calendar(db.session).name == "Berlin"
        assert db.session.scalar(db.select(db.func.count()).select_from(BusinessCalendar)
                                 .where(BusinessCalendar.is_default.is_(True))) == 1


def test_calendar_api(app, api_login, make_user):
    client = app.test_client()
    admin = api_login(client)
    created = client.post("/api/v1/calendar/", headers=admin, json={
        "name": "Berlin office", "timezone": "Europe/Berlin", "work_days": "1, 2,3,4,5",
        "day_start": "08:00", "day_end": "16:30", "is_default": True})
    assert created.status_code == 201, created.get_json()
    cal_id = created.get_json()["id"]
    got = client.get(f"/api/v1/calendar/{cal_id}", headers=admin).get_json()["result"]
    assert got["work_days"] == "1,2,3,4,5" and got["timezone"] == "Europe/Berlin"

    bad = client.post("/api/v1/calendar/", headers=admin, json={
        "name": "Bad", "timezone": "Mars/Olympus", "work_days": "0,8",
        "day_start": "18:00", "day_end": "09:00"})
    assert bad.status_code == 400
    assert set(bad.get_json()["message"]) == {"timezone", "work_days", "day_end"}
    taken = client.post("/api/v1/calendar/", headers=admin, json={"name": "Berlin office"})
    assert taken.status_code == 400 and "name" in taken.get_json()["message"]
    bad = client.post("/api/v1/calendar/", headers=admin, json={
        "name": "Bad", "day_start": "9am"})
    assert bad.status_code == 400 and "day_start" in bad.get_json()["message"]
    bad = client.put(f"/api/v1/calendar/{cal_id}", headers=admin, json={"timezone": "Nowhere"})
    assert bad.status_code == 400 and "timezone" in bad.get_json()["message"]

    holiday = client.post("/api/v1/holiday/", headers=admin, json={
        "calendar_id": cal_id, "day": "2026-12-25", "name": "Christmas"})
    assert holiday.status_code == 201, holiday.get_json()
    duplicate = client.post("/api/v1/holiday/", headers=admin, json={
        "calendar_id": cal_id, "day": "2026-12-25", "name": "Again"})
    assert duplicate.status_code == 400, duplicate.get_json()
    assert "day" in duplicate.get_json()["message"]
    missing = client.post("/api/v1/holiday/", headers=admin, json={
        "calendar_id": 999, "day": "2026-12-26"})
    assert missing.status_code == 400 and "calendar_id" in missing.get_json()["message"]
    with app.app_context():
        chosen = default_calendar(db.session)
        assert chosen.name == "Berlin office"
        assert [h.day for h in chosen.holidays] == [date(2026, 12, 25)]

    # calendars are admin-only (SLA states are computed for users server-side)
    make_user(app, "user", ["CRM User"])
    user = api_login(client, "user", "pw-123456")
    assert client.get("/api/v1/calendar/", headers=user).status_code == 403
    assert client.post("/api/v1/calendar/", headers=user, json={
        "name": "Mine"}).status_code == 403
    assert client.post("/api/v1/holiday/", headers=user, json={
        "calendar_id": cal_id, "day": "2026-12-31"}).status_code == 403


def test_calendar_admin_page(app, web_login):
    client = app.test_client()
    web_login(client)
    page = client.get("/businesscalendarview/list/")
    assert page.status_code == 200
    assert client.get("/businesscalendarview/add").status_code == 200
