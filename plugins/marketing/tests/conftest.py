"""Shared helpers of the marketing plugin's tests."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from trellis.db import db, utcnow
from trellis.models import Account, Activity, Contact, Tag


def seed_people(app) -> dict[str, int]:
    """Five contacts with tags, accounts, activities and orders whose segment
    memberships are computed by hand in the tests.

    ann  ann@acme.com  VIP         Acme (Retail, DE)  viewed P1 2 days ago     order 150 (10 d ago)
    bob  (no e-mail)   -           -                  viewed P1 10 days ago    order 40 (100 d ago)
    cat  cat@beta.io   VIP         Beta (Tech, FR)    -                        -
    dan  dan@acme.com  Newsletter  Acme (Retail, DE)  viewed P2 3 times today  60 (5 d) + P2 70 (1 d)
    eve  eve@x.org     -           -                  email.opened 1 day ago   -
    """
    from trellis_sales.models import Order, OrderLine, Product

    now = utcnow()
    with app.app_context():
        s = db.session
        acme = Account(name="Acme", industry="Retail", country="DE")
        beta = Account(name="Beta", industry="Tech", country="FR")
        vip, news = Tag(name="VIP"), Tag(name="Newsletter")
        p1 = Product(sku="P1", name="Blue chair", price=Decimal("100"))
        p2 = Product(sku="P2", name="Red lamp", price=Decimal("70"))
        s.add_all([acme, beta, vip, news, p1, p2])
        people = {
            "ann": Contact(first_name="Ann", last_name="Alder", email="ann@acme.com",
                           account=acme, tags=[vip]),
            "bob": Contact(first_name="Bob", last_name="Birch", email=None),
            "cat": Contact(first_name="Cat", last_name="Cedar", email="cat@beta.io",
                           account=beta, tags=[vip]),
            "dan": Contact(first_name="Dan", last_name="Dogwood", email="dan@acme.com",
                           account=acme, tags=[news]),
            "eve": Contact(first_name="Eve", last_name="Elm", email="eve@x.org", title="CEO"),
        }
        s.add_all(people.values())
        s.flush()

        def act(who, kind, ago, product=None):
            s.add(Activity(type=kind, subject=f"{kind} {product.name if product else ''}",
                           contact_id=people[who].id, occurred_at=now - ago, plugin="test",
                           payload={"product_id": product.id} if product else None))

        act("ann", "product.viewed", timedelta(days=2), p1)
        act("bob", "product.viewed", timedelta(days=10), p1)
        for hours in (1, 2, 3):
            act("dan", "product.viewed", timedelta(hours=hours), p2)
        act("eve", "email.opened", timedelta(days=1))
        s.add_all([
            Order(contact_id=people["ann"].id, total=Decimal("150"),
                  ordered_at=now - timedelta(days=10)),
            Order(contact_id=people["bob"].id, total=Decimal("40"),
                  ordered_at=now - timedelta(days=100)),
            Order(contact_id=people["dan"].id, total=Decimal("60"),
                  ordered_at=now - timedelta(days=5)),
        ])
        lamp = Order(contact_id=people["dan"].id, ordered_at=now - timedelta(days=1),
                     total=Decimal("70"))
        lamp.lines.append(OrderLine(product_id=p2.id, quantity=1, unit_price=Decimal("70"),
                                    total=Decimal("70")))
        s.add(lamp)
        s.commit()
        ids = {name: c.id for name, c in people.items()}
        ids["P1"], ids["P2"] = p1.id, p2.id
        return ids


import socket
import threading
from email import message_from_bytes, policy as email_policy

import pytest


class Sink:
    """A real SMTP server (aiosmtpd) collecting what it accepts."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        msg = message_from_bytes(envelope.content, policy=email_policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self) -> list[str]:
        with self.lock:
            return [r for rcpts, _ in self.messages for r in rcpts]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink():
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.port = port
    yield sink
    controller.stop()
