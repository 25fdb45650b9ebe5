"""Duplicate warnings for leads (``ModelSpec.duplicates``, see :mod:`trellis.duplicates`):
another open lead or an existing contact with the same e-mail (ignoring case),
or an existing account with the lead's company name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal

from trellis.duplicates import candidates, combine, name_variants, not_self
from trellis.models import Account, Contact
from trellis_sales.models import Lead

#: Leads still being worked: a converted or disqualified lead is no duplicate.
OPEN_STATUSES = ("new", "contacted", "qualified")


def lead_duplicates(session: Any, lead: Lead) -> Any:
    selects = []
    email = (lead.email or "").strip().lower()
    if email:
        label = func.coalesce(Lead.first_name + literal(" "), literal("")) + Lead.last_name
        selects.append(not_self(candidates("lead", Lead.id, label, "open lead, same e-mail")
                                .where(func.lower(Lead.email) == email,
                                       Lead.status.in_(OPEN_STATUSES)), Lead.id, lead))
        selects.append(candidates("contact", Contact.id,
                                  Contact.first_name + literal(" ") + Contact.last_name,
                                  "contact, same e-mail")
                       .where(func.lower(Contact.email) == email))
    names = name_variants(lead.company)
    if names:
        selects.append(candidates("account", Account.id, Account.name, "account, same company")
                       .where(func.lower(Account.name).in_(names)))
    return combine(selects)
