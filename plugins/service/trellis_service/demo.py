"""Service demo data (``trellis demo``): SLA policies, categories, a support team
(with ``--users-password``), knowledge-base articles, and tickets with threads
and survey answers spread over the last weeks, so lists and reports have
something to show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from trellis.db import utcnow
from trellis.models import Contact, Team
from trellis_service.models import (
    Article,
    Category,
    SlaPolicy,
    Survey,
    Ticket,
    TicketMessage,
)

USERS = [("sam.agent", "Sam", "Agent", "Service Agent"),
         ("kim.agent", "Kim", "Agent", "Service Agent"),
         ("lee.lead", "Lee", "Lead", "Service Manager")]
POLICIES = [("low", 16, 80), ("normal", 8, 40), ("high", 4, 16), ("urgent", 1, 8)]
ARTICLES = [
    ("Resetting your password", "Use the 'Forgot password' link on the sign-in page. "
     "The e-mail arrives within five minutes; check your spam folder.", "Account"),
    ("Printing receipts", "Open Settings, choose the printer and print a test receipt. "
     "If the paper jams, open the tray and remove crumpled paper.", "Hardware"),
    ("Understanding your invoice", "Invoices list every licence and the billing period. "
     "Refunds appear as a credit note on the next invoice.", "Billing"),
]
SUBJECTS = ["Cannot sign in", "Printer shows an error", "Invoice amount looks wrong",
            "How do I export my data?", "Scanner not recognised", "Refund request",
            "Slow page loads", "Change billing address"]


def load(session: Any, rng: Any, contact_ids: list[int],
         users_password: str | None = None) -> dict[str, int]:
    for priority, first, resolution in POLICIES:
        if session.scalar(select(SlaPolicy.id).where(SlaPolicy.priority == priority,
                                                     SlaPolicy.tier.is_(None))) is None:
            session.add(SlaPolicy(priority=priority, first_response_hours=first,
                                  resolution_hours=resolution))
    team = None
    agents: list[int] = []
    if users_password:
        sm = current_app.appbuilder.sm
        users = {u: sm.find_user(username=u) or sm.add_user(
            u, first, last, f"{u}@example.com", sm.find_role(role), users_password)
            for u, first, last, role in USERS}
        team = Team(name="Support team", manager_id=users["lee.lead"].id,
                    members=[users["sam.agent"], users["kim.agent"]])
        session.add(team)
        agents = [users["sam.agent"].id, users["kim.agent"].id]
    categories = {}
    for name in ("Account", "Hardware", "Billing"):
        categories[name] = session.scalar(select(Category).where(Category.name == name)) or \
            Category(name=name, team=team)
        session.add(categories[name])
    for title, body, category in ARTICLES:
        session.add(Article(title=title, body=body, category=category, status="published"))
    session.flush()
    emails = dict(session.execute(select(Contact.id, Contact.email)
                                  .where(Contact.id.in_(contact_ids))).all())
    now = utcnow()
    tickets = surveys = 0
    for contact_id in rng.sample(contact_ids, min(len(contact_ids), 40)):
        created = now - timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))
        status = rng.choice(["new", "open", "pending", "resolved", "resolved", "closed"])
        ticket = Ticket(subject=rng.choice(SUBJECTS), description="Please help.",
                        contact_id=contact_id, email=emails.get(contact_id),
                        channel=rng.choice(["email", "email", "web_form", "phone", "chat"]),
                        priority=rng.choice(["low", "normal", "normal", "high", "urgent"]),
                        category=rng.choice(list(categories.values())), created_on=created,
                        status=status)
        session.add(ticket)
        if status != "new":
            session.add(TicketMessage(ticket=ticket, kind="reply", body="We are looking into it.",
                                      created_on=created + timedelta(hours=rng.randint(1, 30))))
        if status in ("resolved", "closed"):
            ticket.resolved_at = created + timedelta(days=rng.randint(1, 5))
            if rng.random() < 0.6:
                session.add(Survey(ticket=ticket, contact_id=contact_id,
                                   agent_id=rng.choice(agents) if agents else None, team=team,
                                   sent_at=ticket.resolved_at, rating=rng.choice([2, 3, 4, 4, 5, 5]),
                                   answered_at=ticket.resolved_at + timedelta(hours=3)))
                surveys += 1
        tickets += 1
    return {"tickets": tickets, "kb_articles": len(ARTICLES), "surveys": surveys}
