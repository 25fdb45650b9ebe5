"""The company currency, exchange rates and in_company_currency(), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import literal, select

from trellis.db import db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request, trellis_app_factory):
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    return trellis_app_factory(database_url=database_url)


def _rates(*rows):
    from trellis.models import ExchangeRate

    db.session.add_all(ExchangeRate(currency=c, rate=Decimal(r), valid_from=d)
                       for c, r, d in rows)
    db.session.commit()


def _convert(amount, currency, on):
    from trellis.currency import in_company_currency

    value = db.session.scalar(select(in_company_currency(
        literal(Decimal(amount)), literal(currency), on)))
    return None if value is None else f"{Decimal(str(value)):.2f}"


def test_in_company_currency_takes_the_rate_valid_on_the_day(app):
    with app.app_context():
        _rates(("USD", "0.80", date(2026, 1, 1)), ("USD", "0.90", date(2026, 12, 4)),
               ("GBP", "1.25", date(2026, 6, 1)))
        assert _convert("100", "USD", date(2025, 12, 31)) is None     # before any rate
        assert _convert("100", "USD", date(2026, 1, 1)) == "80.00"    # from its first day
        assert _convert("100", "USD", date(2026, 12, 3)) == "80.00"
        assert _convert("100", "USD", date(2026, 12, 4)) == "90.00"   # the next rate
        assert _convert("100", "USD", date(2030, 1, 1)) == "90.00"    # until there is another
        assert _convert("100", "GBP", date(2026, 5, 31)) is None
        assert _convert("100", "GBP", date(2026, 6, 1)) == "125.00"
        assert _convert("100", "CHF", date(2026, 6, 1)) is None       # no rate at all
        assert _convert("100", "EUR", date(1999, 1, 1)) == "100.00"   # the company currency
        # a timestamp counts on its UTC day
        assert _convert("100", "USD", datetime(2026, 12, 3, 23, 59, tzinfo=timezone.utc)) \
            == "80.00"


def test_conversion_of_a_timestamp_column_in_one_statement(app):
    """A correlated subquery per row: each activity converts at the rate of its own day."""
    from trellis.currency import in_company_currency
    from trellis.models import Activity

    with app.app_context():
        _rates(("USD", "0.80", date(2026, 1, 1)), ("USD", "0.90", date(2026, 12, 4)))
        for day, hour in [(3, 23), (4, 0), (4, 12)]:
            db.session.add(Activity(type="call", subject=f"{day}/{hour}",
                                    occurred_at=datetime(2026, 12, day, hour,
                                                         tzinfo=timezone.utc)))
        db.session.add(Activity(type="call", subject="old",
                                occurred_at=datetime(2025, 6, 1, tzinfo=timezone.utc)))
        db.session.commit()
        rows = db.session.execute(
            select(Activity.subject, in_company_currency(literal(Decimal("10")),
                                                         literal("USD"), Activity.occurred_at))
            .order_by(Activity.occurred_at)).all()
        assert [(s, None if v is None else f"{Decimal(str(v)):.2f}") for s, v in rows] == [
            ("old", None), ("3/23", "8.00"), ("4/0", "9.00"), ("4/12", "9.00")]


def test_company_currency_is_a_core_setting(app, api_login):
    from trellis.currency import company_currency

    client = app.test_client()
    admin = api_login(client)
    with app.app_context():
        assert company_currency() == "EUR"
    bad = client.put("/api/v1/settings/core", headers=admin, json={"company_currency": "euro"})
    assert bad.status_code == 400
    assert bad.get_json()["message"] == {
        "company_currency": ["Use a three-letter ISO 4217 code in capitals, e.g. USD."]}
    assert client.put("/api/v1/settings/core", headers=admin,
                      json={"company_currency": "CHF"}).status_code == 200
    with app.app_context():
        assert company_currency() == "CHF"
        _rates(("EUR", "0.95", date(2026, 1, 1)))
        assert _convert("100", "EUR", date(2026, 2, 1)) == "95.00"
        assert _convert("100", "CHF", date(2026, 2, 1)) == "100.00"


def test_exchange_rate_api_validates_and_only_admins_and_managers_edit(
        trellis_app_factory, api_login, make_user):
    app = trellis_app_factory(plugins=["sales"])
    client = app.test_client()
    admin = api_login(client)
    make_user(app, "viewer", ["CRM User"])
    make_user(app, "rep", ["Sales Rep"])
    make_user(app, "boss", ["Sales Manager"])

    bad = client.post("/api/v1/exchange_rate/", headers=admin,
                      json={"currency": "usd", "rate": 0, "valid_from": "soon"})
    assert bad.status_code == 400
    assert bad.get_json()["message"] == {
        "currency": ["Use a three-letter ISO 4217 code in capitals, e.g. USD."],
        "rate": ["Must be greater than 0."],
        "valid_from": ["Not a valid date."]}
    own = client.post("/api/v1/exchange_rate/", headers=admin,
                      json={"currency": "EUR", "rate": 1, "valid_from": "2026-01-01"})
    assert own.status_code == 400
    assert own.get_json()["message"] == {
        "currency": ["EUR is the company currency: it needs no rate."]}
    missing = client.post("/api/v1/exchange_rate/", headers=admin, json={"currency": "USD"})
    assert missing.status_code == 400
    assert set(missing.get_json()["message"]) == {"rate", "valid_from"}

    body = {"currency": "USD", "rate": "0.91", "valid_from": "2026-01-01"}
    created = client.post("/api/v1/exchange_rate/", headers=admin, json=body)
    assert created.status_code == 201, created.get_json()
    twice = client.post("/api/v1/exchange_rate/", headers=admin, json=body)
    assert twice.status_code == 400
    assert twice.get_json()["message"] == {
        "valid_from": ["There is already a USD rate from 2026-01-01."]}
    rate_id = created.get_json()["id"]
    assert client.put(f"/api/v1/exchange_rate/{rate_id}", headers=admin,
                      json={"rate": -2}).status_code == 400

    for user in ("viewer", "rep"):
        headers = api_login(client, user, "pw-123456")
        listed = client.get("/api/v1/exchange_rate/", headers=headers)
        assert listed.status_code == 200 and listed.get_json()["count"] == 1
        assert client.post("/api/v1/exchange_rate/", headers=headers,
                           json={**body, "valid_from": "2026-02-01"}).status_code == 403
    boss = api_login(client, "boss", "pw-123456")
    assert client.post("/api/v1/exchange_rate/", headers=boss,
                       json={**body, "valid_from": "2026-02-01"}).status_code == 201
    assert client.put(f"/api/v1/exchange_rate/{rate_id}", headers=boss,
                      json={"rate": "0.93"}).status_code == 200


def test_exchange_rate_admin_page(trellis_app_factory, web_login):
    app = trellis_app_factory()
    client = app.test_client()
    web_login(client)
    page = client.get("/exchangerateview/list/")
    assert page.status_code == 200
    assert "Exchange rates" in client.get("/").get_data(as_text=True)


def test_conversion_by_join_gives_what_the_subquery_gives(app):
    """conversion(): the same values as in_company_currency(), from one LEFT JOIN
    to the rate ranges (one row per row, however many rates a currency has)."""
    from trellis.currency import conversion, in_company_currency
    from trellis.models import Activity

    with app.app_context():
        _rates(("USD", "0.80", date(2026, 1, 1)), ("USD", "0.90", date(2026, 12, 4)),
               ("USD", "0.85", date(2027, 3, 1)), ("GBP", "1.25", date(2026, 6, 1)))
        moments = [(2025, 6, 1, 0), (2026, 1, 1, 0), (2026, 12, 3, 23), (2026, 12, 4, 0),
                   (2027, 2, 28, 12), (2027, 3, 1, 0), (2030, 1, 1, 0)]
        for y, m, d, h in moments:
            for cur in ("USD", "GBP", "EUR", "CHF"):
                db.session.add(Activity(type="call", subject=cur, occurred_at=datetime(
                    y, m, d, h, tzinfo=timezone.utc)))
        db.session.commit()
        amount, currency = literal(Decimal("10")), Activity.subject
        conv = conversion(amount, currency, Activity.occurred_at)
        joined = db.session.execute(conv.join(
            select(Activity.id, conv.value).select_from(Activity)).order_by(Activity.id)).all()
        sub = db.session.execute(select(Activity.id, in_company_currency(
            amount, currency, Activity.occurred_at)).order_by(Activity.id)).all()

        def fmt(rows):
            return [(i, None if v is None else f"{Decimal(str(v)):.2f}") for i, v in rows]
        assert len(joined) == len(moments) * 4
        assert fmt(joined) == fmt(sub)
        assert [v for _, v in fmt(joined)][:8] == [None, None, "10.00", None,
                                                  "8.00", None, "10.00", None]
