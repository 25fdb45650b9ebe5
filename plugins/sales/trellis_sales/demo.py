"""Realistic sales demo data: products, leads, deals across the pipeline, orders, tasks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from trellis.db import utcnow
from trellis.models import Contact
from trellis_sales.behaviour import default_pipeline
from trellis_sales.models import Deal, DealLine, Lead, Product, Task

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


def load(session: Any, rng: Any, contact_ids: list[int]) -> dict[str, int]:
    pipeline = default_pipeline(session)
    if pipeline is None:
        return {}
    products = [Product(sku=s, name=n, price=Decimal(p)) for s, n, p in PRODUCTS]
    session.add_all(products)
    owner = session.execute(select(Contact.owner_id).limit(1)).scalar()
    leads = []
    for i in range(40):
        first, last, company, industry, country = rng.choice(LEADS)
        leads.append(Lead(first_name=first, last_name=f"{last}", company=f"{company} {i}",
                          email=f"{first}.{last}.{i}@{company.split()[0].lower()}{i}.example",
                          industry=industry, country=country, source=rng.choice(SOURCES),
                          status=rng.choice(STATUSES), owner_id=owner))
    session.add_all(leads)
    session.flush()
    now = utcnow()
    contacts = session.scalars(select(Contact).where(Contact.id.in_(contact_ids))).all()
    deals = 0
    for contact in rng.sample(contacts, min(60, len(contacts))):
        stage = rng.choices(pipeline.stages, weights=[5, 4, 4, 3, 4, 2])[0]
        deal = Deal(name=f"{contact.account.name if contact.account else contact.name} "
                         f"{rng.choice(['rollout', 'renewal', 'expansion', 'pilot'])}",
                    contact=contact, account=contact.account, pipeline=pipeline, stage=stage,
                    expected_close=(now + timedelta(days=rng.randint(-30, 120))).date(),
                    owner_id=owner, lost_reason="Price" if stage.is_lost else None,
                    created_on=now - timedelta(days=rng.randint(5, 200)))
        amount = Decimal("0")
        for product in rng.sample(products, rng.randint(1, 3)):
            quantity = rng.randint(1, 20)
            deal.lines.append(DealLine(product=product, quantity=quantity,
                                       unit_price=product.price))
            amount += product.price * quantity
        deal.amount = amount
        session.add(deal)
        if not (stage.is_won or stage.is_lost):
            session.add(Task(kind=rng.choice(["call", "email", "meeting"]),
                             subject=f"Follow up on {deal.name}", deal=deal, owner_id=owner,
                             due_at=now + timedelta(days=rng.randint(-3, 14))))
        deals += 1
        session.flush()
    return {"products": len(products), "leads": len(leads), "deals": deals}
