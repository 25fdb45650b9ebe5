"""Shared set-up for the scoring tests: four customers with hand-countable
activities and orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from trellis.db import db, utcnow
from trellis.models import Activity, Contact
from trellis.settings import update_settings


def add_order(contact_id: int, total: str, days_ago: float, lines=()):
    """An order (sales plugin) ``days_ago`` days back; ``lines`` = [(product_id, qty, price)]."""
    from trellis_sales.models import Order, OrderLine

    order = Order(contact_id=contact_id, total=Decimal(total), currency="EUR",
                  ordered_at=utcnow() - timedelta(days=days_ago))
    for product_id, qty, price in lines:
        order.lines.append(OrderLine(product_id=product_id, quantity=qty,
                                     unit_price=Decimal(price)))
    db.session.add(order)
    return order


def add_calls(contact_id: int, n: int, days_ago: float = 1) -> None:
    for _ in range(n):
        db.session.add(Activity(type="call", subject="call", contact_id=contact_id,
                                occurred_at=utcnow() - timedelta(days=days_ago)))


def four_customers(app) -> dict[str, int]:
    """A: 3 calls, orders 50 + 50 (two months); B: 1 call, one order 300;
    C: nothing; D: 2 calls, one order 500.  Orders are 100+ days old, so their
    timeline entries are outside the 90-day interaction window."""
    with app.app_context():
        update_settings("scoring", {"recompute_on_events": "", "high_tier_from": 60,
                                    "medium_tier_from": 30})
        people = {k: Contact(first_name=k, last_name="Customer") for k in "ABCD"}
        db.session.add_all(people.values())
        db.session.commit()
        ids = {k: c.id for k, c in people.items()}
        add_calls(ids["A"], 3)
        add_calls(ids["B"], 1)
        add_calls(ids["D"], 2)
        add_order(ids["A"], "50", 100)
        add_order(ids["A"], "50", 160)
        add_order(ids["B"], "300", 120)
        add_order(ids["D"], "500", 110)
        db.session.commit()
    return ids
