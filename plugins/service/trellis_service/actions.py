"""The service plugin's automation action: ``service.create_ticket``.

One ticket per record, linked to the record's contact and account (a deal's,
an order's, a contact's and its company's), through the ORM so the ticket rules
(defaults, SLA, assignment), the audit log and ``ticket.opened`` apply.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import null, select

from trellis import templating
from trellis.actions import ActionError, record_data
from trellis.specs import ActionSpec
from trellis_service.models import PRIORITIES, Ticket


class CreateTicketParams(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=255), metadata={
        "description": "a template: {{ record.name }} is the record's field"})
    description = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=10000))
    priority = fields.String(load_default="normal", validate=validate.OneOf(
        PRIORITIES, error=f"Must be one of: {', '.join(PRIORITIES)}."))
    team_id = fields.Integer(load_default=None, allow_none=True)

    @validates("subject")
    def _subject(self, value: str, **_: Any) -> None:
        problems = templating.check(value)
        if problems:
            raise ValidationError(problems)


def _links(session: Any, model: str, ids: list[int]) -> dict[int, tuple[Any, Any]]:
    """``{record id: (contact_id, account_id)}``: the record's own columns, else
    its contact's company (two queries at most)."""
    from trellis.extension import current_trellis
    from trellis.models import Contact

    entry = current_trellis().registry.get(model)
    m = entry.model
    if model == "account":
        return {i: (None, i) for i in ids}
    field = "id" if model == "contact" else entry.spec.contact_field
    contact = getattr(m, field) if field else null()
    account = m.account_id if "account_id" in m.__table__.columns else null()
    out = {rid: (c, a) for rid, c, a in session.execute(
        select(m.id, contact, account).where(m.id.in_(ids))).all()}
    missing = {c for c, a in out.values() if c is not None and a is None}
    if missing:
        companies = dict(session.execute(select(Contact.id, Contact.account_id)
                                         .where(Contact.id.in_(missing))).all())
        out = {i: (c, a if a is not None else companies.get(c)) for i, (c, a) in out.items()}
    return out


def create_ticket(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict:
    """Open one ticket per record; the subject is a template over ``record``."""
    from trellis.models import Team

    if params["team_id"] is not None and session.get(Team, params["team_id"]) is None:
        raise ActionError({"team_id": [f"No team with id {params['team_id']}."]})
    data = record_data(session, model, ids)
    links = _links(session, model, ids)
    render = templating.compile_template(params["subject"])
    tickets = []
    for record_id in sorted(data):
        contact_id, account_id = links.get(record_id, (None, None))
        try:
            subject = render({"record": data[record_id]}).strip()[:255]
        except templating.RenderError as exc:
            raise ActionError({"subject": [str(exc)]}) from exc
        ticket = Ticket(subject=subject or params["subject"][:255],
                        description=params["description"], priority=params["priority"],
                        team_id=params["team_id"], contact_id=contact_id,
                        account_id=account_id, channel="api")
        session.add(ticket)
        tickets.append(ticket)
    session.flush()
    return {"tickets": len(tickets), "ticket_ids": [t.id for t in tickets]}


def actions() -> list[ActionSpec]:
    return [ActionSpec("service.create_ticket", "Create a ticket", CreateTicketParams,
                       create_ticket, models=("*",),
                       description="One ticket per record, linked to its contact and "
                                   "account.")]
