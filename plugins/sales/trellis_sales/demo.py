"""Realistic sales demo data: a sales team, products, leads, deals that moved
through the pipeline over months, orders with repeat customers, tasks and quotas,
so the board, the forecast and every report have something to show."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from trellis.db import utcnow
from trellis.models import Activity, Contact, ExchangeRate, Team
from trellis_sales.behaviour import default_pipeline
from trellis_sales.models import (
    Deal,
    DealLine,
    DealStageHistory,
    FollowUpPlan,
    FollowUpStep,
    Lead,
    Order,
    OrderLine,
    Product,
    Quota,
    Task,
)

PRODUCTS = [("TRL-STARTER", "Starter licence", "490"), ("TRL-PRO", "Professional licence", "1490"),
            ("TRL-ENT", "Enterprise licence", "4900"), ("SVC-ONBOARD", "Onboarding package", "2500"),
            ("SVC-TRAIN", "Training day", "1200"), ("SUP-PREM", "Premium support (year)", "3600"),
            ("HW-SCAN", "Barcode scanner", "189"), ("HW-TERM", "Point-of-sale terminal", "899")]
LEADS = [("Lena", "Vogel", "Vogel Bau", "Construction", "DE"),
         ("Marco", "Bianchi", "Bianchi Foods", "Food & Beverage", "IT"),
         ("Aiko", "Sato", "Sato Robotics", "Manufacturing", "JP"),
         ("Chen", "Wei", "Wei Trading", "Retail", "CN"),
         ("Sofia", "Lopez", "Lopez Viajes", "Travel", "ES"),
         ("Oliver", "Smith", "Smith & Sons", "Logistics", "GB"),
         ("Emma", "Dubois", "Atelier Dubois", "Retail", "FR"),
         ("Noah", "Jensen", "Jensen Energi", "Energy", "DK")]
SOURCES = ["web_form", "campaign", "referral", "event", "import", "manual"]
STATUSES = ["new", "new", "contacted", "contacted", "qualified", "disqualified"]
LOST_REASONS = ["Price", "Went with a competitor", "No budget", "Timing", "No decision"]
#: (username, first name, last name, role); the manager leads the team of reps.
USERS = [("anna.rep", "Anna", "Berg", "Sales Rep"), ("ben.rep", "Ben", "Okafor", "Sales Rep"),
         ("mia.manager", "Mia", "Larsen", "Sales Manager")]
#: Value of one unit in the company currency (EUR by default), from a year ago.
RATES = {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}


def _users(session: Any, password: str | None) -> list[int]:
    """Demo reps and their manager in one team; the reps' ids ([] without a password)."""
    if not password:
        return []
    sm = current_app.appbuilder.sm
    users = {}
    for username, first, last, role in USERS:
        user = sm.find_user(username=username) or sm.add_user(
            username, first, last, f"{username}@example.com", sm.find_role(role), password)
        users[username] = user
    session.add(Team(name="Sales team", manager_id=users["mia.manager"].id,
                     members=[users["anna.rep"], users["ben.rep"]]))
    return [users["anna.rep"].id, users["ben.rep"].id]


def _backdate(session: Any, deal: Deal, rng: Any) -> None:
    """Spread a deal's stage history from its creation date to a few weeks ago."""
    rows = session.scalars(select(DealStageHistory).where(DealStageHistory.deal_id == deal.id)
                           .order_by(DealStageHistory.id)).all()
    at = deal.created_on
    for i, row in enumerate(rows):
        row.entered_at = at
        if i < len(rows) - 1:
            at = min(at + timedelta(days=rng.randint(3, 21), hours=rng.randint(0, 8)),
                     utcnow() - timedelta(hours=len(rows) - i))
            row.left_at = at
    closed = {"won_at": at} if deal.stage.is_won else {"lost_at": at} if deal.stage.is_lost else {}
    session.execute(update(Deal).where(Deal.id == deal.id).values(last_activity_at=at, **closed))
    session.execute(update(Order).where(Order.deal_id == deal.id).values(ordered_at=at))
    session.execute(update(Activity).where(Activity.plugin == "sales",
                                           Activity.contact_id == deal.contact_id)
                    .values(occurred_at=at))


def _repeat_orders(session: Any, rng: Any, contacts: list[Contact], products: list[Product],
                   owners: list[int | None]) -> int:
    """Past purchases: some customers buy once, some again and again."""
    now, count = utcnow(), 0
    for contact in rng.sample(contacts, len(contacts) // 3):
        for _ in range(rng.choice([1, 1, 2, 3, 4])):
            order = Order(contact=contact, account=contact.account, owner_id=rng.choice(owners),
                          ordered_at=now - timedelta(days=rng.randint(10, 700)))
            for product in rng.sample(products, rng.randint(1, 2)):
                order.lines.append(OrderLine(product=product, quantity=rng.randint(1, 5),
                                             unit_price=product.price))
            session.add(order)
            count += 1
    return count


def load(session: Any, rng: Any, contact_ids: list[int],
         users_password: str | None = None) -> dict[str, int]:
    pipeline = default_pipeline(session)
    if pipeline is None:
        return {}
    reps = _users(session, users_password)
    owners: list[int | None] = list(reps) or [None]
    today = date.today()
    for currency, rate in RATES.items():
        if not session.scalar(select(ExchangeRate.id).where(ExchangeRate.currency == currency)):
            session.add(ExchangeRate(currency=currency, rate=rate,
                                     valid_from=today - timedelta(days=365)))
    products = [Product(sku=s, name=n, price=Decimal(p)) for s, n, p in PRODUCTS]
    session.add_all(products)
    if not session.scalar(select(FollowUpPlan.id).limit(1)):
        session.add(FollowUpPlan(name="New lead cadence",
                                 description="Call, then e-mail, then meet within a week.",
                                 steps=[FollowUpStep(day=1, kind="call", subject="Intro call"),
                                        FollowUpStep(day=3, kind="email",
                                                     subject="Send case studies"),
                                        FollowUpStep(day=7, kind="meeting",
                                                     subject="Demo meeting")]))
    now = utcnow()
    leads = []
    for i in range(40):
        first, last, company, industry, country = rng.choice(LEADS)
        leads.append(Lead(first_name=first, last_name=last, company=f"{company} {i}",
                          email=f"{first}.{last}.{i}@{company.split()[0].lower()}{i}.example",
                          industry=industry, country=country, source=rng.choice(SOURCES),
                          status=rng.choice(STATUSES), owner_id=rng.choice(owners),
                          created_on=now - timedelta(hours=rng.randint(1, 24 * 90))))
    session.add_all(leads)
    session.flush()
    contacts = session.scalars(select(Contact).where(Contact.id.in_(contact_ids))).all()
    stages = pipeline.stages
    deals = tasks = 0
    for contact in rng.sample(contacts, min(60, len(contacts))):
        target = rng.choices(stages, weights=[5, 4, 4, 3, 4, 2])[0]
        deal = Deal(name=f"{contact.account.name if contact.account else contact.name} "
                         f"{rng.choice(['rollout', 'renewal', 'expansion', 'pilot'])}",
                    contact=contact, account=contact.account, pipeline=pipeline, stage=stages[0],
                    currency=rng.choice(["EUR", "EUR", "EUR", "USD", "GBP"]),
                    expected_close=(now + timedelta(days=rng.randint(-30, 120))).date(),
                    owner_id=rng.choice(owners),
                    created_on=now - timedelta(days=rng.randint(30, 300)))
        amount = Decimal("0")
        for product in rng.sample(products, rng.randint(1, 3)):
            quantity = rng.randint(1, 20)
            deal.lines.append(DealLine(product=product, quantity=quantity,
                                       unit_price=product.price))
            amount += product.price * quantity
        deal.amount = amount
        session.add(deal)
        session.flush()
        # walk the pipeline stage by stage, as a rep would, so the history is real
        path = [s for s in stages if not (s.is_won or s.is_lost)]
        if target.is_won or target.is_lost:
            path = path[:rng.randint(2, len(path))] + [target]
        else:
            path = path[:path.index(target) + 1]
        for stage in path[1:]:
            deal.stage = stage
            if stage.is_lost:
                deal.lost_reason = rng.choice(LOST_REASONS)
            session.flush()
        _backdate(session, deal, rng)
        if not (target.is_won or target.is_lost):
            session.add(Task(kind=rng.choice(["call", "email", "meeting"]),
                             subject=f"Follow up on {deal.name}", deal=deal,
                             owner_id=deal.owner_id,
                             due_at=now + timedelta(days=rng.randint(-3, 14))))
            tasks += 1
        deals += 1
    orders = _repeat_orders(session, rng, contacts, products, owners)
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    for rep in reps:
        for start in (date(quarter.year - (quarter.month == 1), (quarter.month - 4) % 12 + 1, 1),
                      quarter):
            end = date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
            session.add(Quota(user_id=rep, period_start=start,
                              period_end=end - timedelta(days=1), amount=Decimal("60000")))
    session.flush()
    return {"sales users": len(USERS) if reps else 0, "products": len(products),
            "follow-up plans": 1,
            "leads": len(leads), "deals": deals, "orders": orders, "tasks": tasks}
