"""The sales plugin's part of personal-data export and erasure (core hooks
``trellis_personal_data`` and ``trellis_erase_personal_data``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, update

from trellis.audit import jsonable, redact
from trellis.models import Contact
from trellis_sales.models import Deal, Lead, Order, Task


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: jsonable(getattr(obj, c.key)) for c in obj.__mapper__.column_attrs}


def _leads(contact: Contact) -> Any:
    """Leads that are this person: converted into the contact, or with its e-mail."""
    match = [Lead.converted_contact_id == contact.id]
    if contact.email:
        match.append(func.lower(Lead.email) == contact.email.strip().lower())
    return select(Lead).where(or_(*match))


def personal_data(session: Any, contact_id: int) -> dict[str, Any] | None:
    contact = session.get(Contact, contact_id)
    if contact is None:
        return None
    orders = session.scalars(select(Order).where(Order.contact_id == contact_id)
                             .order_by(Order.id)).all()
    data = {
        "leads": [_row(lead) for lead in session.scalars(_leads(contact))],
        "deals": [_row(d) for d in session.scalars(
            select(Deal).where(Deal.contact_id == contact_id).order_by(Deal.id))],
        "orders": [{**_row(o), "lines": [_row(line) for line in o.lines]} for o in orders],
        "tasks": [_row(t) for t in session.scalars(
            select(Task).where(Task.contact_id == contact_id).order_by(Task.id))],
    }
    return data if any(data.values()) else None


def erase(session: Any, contact_id: int) -> None:
    """Anonymise the person's leads and the text of their tasks.  Deals and orders
    stay (figures, and invoices the law makes us keep) on the anonymised contact."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        return
    lead_ids = [lead.id for lead in session.scalars(_leads(contact))]
    if lead_ids:
        session.execute(update(Lead).where(Lead.id.in_(lead_ids)).values(
            first_name=None, last_name="Erased lead", email=None, phone=None, title=None),
            execution_options={"synchronize_session": False})
        redact(session, "lead", lead_ids)
    task_ids = list(session.scalars(select(Task.id).where(Task.contact_id == contact_id)))
    if task_ids:
        session.execute(update(Task).where(Task.id.in_(task_ids)).values(
            subject="(erased)", notes=None), execution_options={"synchronize_session": False})
        redact(session, "task", task_ids)
