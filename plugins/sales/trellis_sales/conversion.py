"""Lead conversion: a lead becomes contact + account + deal in one step,
matching existing contacts (same e-mail) and accounts (same company domain or
name) instead of creating duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, or_, select

from trellis.db import db
from trellis.events import queue
from trellis.models import Account, Activity, Contact
from trellis.rules import visible_ids
from trellis.validation import RecordInvalid
from trellis_sales.behaviour import PLUGIN, default_pipeline
from trellis_sales.models import Deal, Lead, Pipeline

#: Mailbox providers whose domain says nothing about the employer.
FREE_MAIL = frozenset({"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com",
                       "outlook.com", "live.com", "icloud.com", "aol.com", "gmx.de",
                       "web.de", "qq.com", "163.com", "126.com", "proton.me"})


@dataclass
class Conversion:
    contact: Contact
    account: Account | None
    deal: Deal | None
    contact_created: bool
    account_created: bool


def _matchable(model: type) -> Any:
    """Records a conversion may reuse: those the user may see, and unowned ones
    (a shared pool, claimed for the lead's owner).  Another rep's customer is
    never matched: linking to it would reveal it."""
    visible = visible_ids(model)
    stmt = select(model)
    if visible is not None:
        stmt = stmt.where(or_(model.id.in_(visible), model.owner_id.is_(None)))
    return stmt


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower()
    return None if domain in FREE_MAIL else domain


def convert_lead(lead: Lead, *, create_deal: bool = True, deal_name: str | None = None,
                 amount: Decimal | None = None, pipeline_id: int | None = None) -> Conversion:
    """Convert ``lead``; the caller commits.  Raises :class:`RecordInvalid`."""
    session = db.session
    if lead.status == "converted":
        raise RecordInvalid({"status": ["This lead is already converted."]})
    if lead.status == "disqualified":
        raise RecordInvalid({"status": ["A disqualified lead cannot be converted."]})
    domain = email_domain(lead.email)
    account = None
    account_created = False
    if domain:
        account = session.scalars(_matchable(Account).where(
            func.lower(Account.domain) == domain).order_by(Account.id)).first()
    if account is None and lead.company:
        account = session.scalars(_matchable(Account).where(
            func.lower(Account.name) == lead.company.strip().lower())
            .order_by(Account.id)).first()
    if account is None and (lead.company or domain):
        account = Account(name=lead.company or domain, domain=domain, industry=lead.industry,
                          country=lead.country, owner_id=lead.owner_id)
        session.add(account)
        account_created = True
    contact = None
    if lead.email:
        contact = session.scalars(_matchable(Contact).where(
            func.lower(Contact.email) == lead.email.strip().lower())
            .order_by(Contact.id)).first()
    if account is not None and account.owner_id is None:
        account.owner_id = lead.owner_id  # an unowned match goes to the lead's owner
    contact_created = contact is None
    if contact is None:
        contact = Contact(first_name=lead.first_name or "", last_name=lead.last_name,
                          email=lead.email, phone=lead.phone, title=lead.title,
                          account=account, owner_id=lead.owner_id)
        session.add(contact)
    else:
        if contact.owner_id is None:
            contact.owner_id = lead.owner_id
        if contact.account_id is None and account is not None:
            contact.account = account
    deal = None
    if create_deal:
        pipeline = session.get(Pipeline, pipeline_id) if pipeline_id else default_pipeline(session)
        if pipeline is None:
            raise RecordInvalid({"pipeline_id": ["No such pipeline."]})
        deal = Deal(name=deal_name or gettext("%(name)s deal", name=lead.company or lead.name),
                    account=account,
                    contact=contact, pipeline=pipeline, amount=amount or Decimal("0"),
                    owner_id=lead.owner_id)
        session.add(deal)
    session.flush()
    lead.status = "converted"
    lead.converted_contact_id = contact.id
    lead.converted_deal_id = deal.id if deal else None
    session.add(Activity(type="lead.converted",
                         subject=gettext("Converted from lead %(lead)s", lead=lead.name),
                         contact_id=contact.id, account_id=account.id if account else None,
                         plugin=PLUGIN, payload={"lead_id": lead.id,
                                                 "deal_id": deal.id if deal else None}))
    queue(session, "lead.converted", {"lead_id": lead.id, "contact_id": contact.id,
                                      "account_id": account.id if account else None,
                                      "deal_id": deal.id if deal else None}, plugin=PLUGIN)
    return Conversion(contact, account, deal, contact_created, account_created)
