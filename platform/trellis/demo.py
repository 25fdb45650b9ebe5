"""Realistic, seeded demo data: accounts, contacts, notes and timelines."""

from __future__ import annotations

import random
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, insert, select

from trellis.db import db, utcnow
from trellis.extension import current_trellis
from trellis.models import Account, Activity, Contact, Note, SavedReport, Tag

FIRST = ["Anna", "Ben", "Chloé", "David", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Julia",
         "Kenji", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq",
         "Uma", "Viktor", "Wei", "Xenia", "Yusuf", "Zoe", "Li", "Mei", "Jun", "Ying"]
LAST = ["Andersen", "Bauer", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Hoffmann",
        "Ito", "Jensen", "Kowalski", "Larsen", "Müller", "Novak", "Okafor", "Patel", "Rossi",
        "Schmidt", "Tanaka", "Wang", "Zhang", "Liu", "Nguyen", "Silva", "Kim"]
COMPANIES = [("Northwind Traders", "northwind.example", "Retail", "US"),
             ("Contoso Pharma", "contoso.example", "Healthcare", "DE"),
             ("Fabrikam Motors", "fabrikam.example", "Manufacturing", "JP"),
             ("Tailspin Air", "tailspin.example", "Aviation", "GB"),
             ("Wingtip Toys", "wingtip.example", "Retail", "FR"),
             ("Adventure Works", "adventure-works.example", "Sports", "US"),
             ("Litware Software", "litware.example", "Software", "IN"),
             ("Proseware Labs", "proseware.example", "Biotech", "CH"),
             ("Blue Yonder Logistics", "blueyonder.example", "Logistics", "NL"),
             ("Coho Vineyard", "coho.example", "Food & Beverage", "IT"),
             ("Lucerne Publishing", "lucerne.example", "Media", "CN"),
             ("Margie's Travel", "margies.example", "Travel", "ES")]
TITLES = ["CEO", "CTO", "Head of Purchasing", "Operations Manager", "Marketing Lead",
          "Office Manager", "IT Director", "Sales Director", "Procurement Specialist"]
TAGS = [("VIP", "#c62828"), ("Newsletter", "#1565c0"), ("Partner", "#2e7d32"),
        ("Prospect", "#f9a825")]
ACTIVITIES = [("email", "Sent product brochure"), ("call", "Discovery call"),
              ("meeting", "On-site visit"), ("email", "Follow-up on quote"),
              ("call", "Support check-in")]


def load_demo(contacts: int = 200, seed: int = 7,
              users_password: str | None = None) -> dict[str, int]:
    """Create demo records (idempotent: does nothing if contacts already exist).

    With ``users_password``, plugins may add demo users who log in with it."""
    if db.session.scalar(select(func.count()).select_from(Contact)):
        return {"contacts (already present)": db.session.scalar(
            select(func.count()).select_from(Contact))}
    rng = random.Random(seed)
    tags = [Tag(name=n, color=c) for n, c in TAGS]
    accounts = [Account(name=n, domain=d, industry=i, country=c) for n, d, i, c in COMPANIES]
    db.session.add_all(tags + accounts)
    db.session.flush()
    now = utcnow()
    people = []
    for i in range(contacts):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        account = rng.choice(accounts)
        person = Contact(first_name=first, last_name=last, title=rng.choice(TITLES),
                         email=f"{first}.{last}.{i}@{account.domain}".lower(),
                         phone=f"+1 555 {rng.randint(1000000, 9999999)}", account=account,
                         created_on=now - timedelta(days=rng.randint(1, 720)))
        person.tags = rng.sample(tags, rng.randint(0, 2))
        people.append(person)
    db.session.add_all(people)
    db.session.flush()
    activity_rows = []
    for person in people:
        for _ in range(rng.randint(1, 6)):
            kind, subject = rng.choice(ACTIVITIES)
            activity_rows.append({
                "type": kind, "subject": subject, "contact_id": person.id,
                "account_id": person.account_id, "plugin": "core",
                "occurred_at": now - timedelta(days=rng.randint(0, 365), hours=rng.randint(0, 23)),
            })
    db.session.execute(insert(Activity), activity_rows)
    notes = [Note(body=f"{p.first_name} prefers e-mail in the morning.", contact=p)
             for p in people[: contacts // 5]]
    db.session.add_all(notes)
    # a shared report of the report builder, ready to put on a dashboard
    db.session.add(SavedReport(name="New contacts by month", shared=True, definition={
        "model": "contact", "group_by": [{"field": "created_on", "bucket": "month"}],
        "measures": [{"op": "count"}], "chart": "series"}))
    if users_password:  # a CRM-wide manager: the full dashboard
        sm = current_app.appbuilder.sm
        if sm.find_user(username="max.manager") is None and sm.find_role("Manager"):
            sm.add_user("max.manager", "Max", "Manager", "max.manager@example.com",
                        sm.find_role("Manager"), users_password)
    counts = {"accounts": len(accounts), "contacts": len(people),
              "activities": len(activity_rows), "notes": len(notes), "reports": 1}
    ids = [p.id for p in people]
    ext = current_trellis()
    for plugin in ext.plugins.loaded():
        if ext.is_enabled(plugin.name):
            result = ext.plugins.call_one(plugin.name, "trellis_demo_data", session=db.session,
                                          rng=rng, contact_ids=ids,
                                           users_password=users_password)
            counts.update(result or {})
    db.session.commit()
    return counts
