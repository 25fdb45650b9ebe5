"""The marketing plugin's automation actions.

``marketing.send_template`` queues an e-mail from a template to each record's
contact — consent, bounces and sending as for journey e-mail (the
``marketing.send_journey_messages`` job sends it after commit);
``marketing.enrol_journey`` enrols the records' contacts in a journey (those who
may enter it).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import func, insert, literal, select

from trellis import consent
from trellis.actions import ActionError, contact_ids
from trellis.db import utcnow
from trellis.jobs import enqueue
from trellis.models import Contact
from trellis.specs import ActionSpec
from trellis_marketing import journeys
from trellis_marketing.models import EmailTemplate, Journey, Message


class SendTemplateParams(Schema):
    template_id = fields.Integer(required=True, metadata={"description": "an e-mail template"})


def send_template(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict:
    """Queue the template to the records' contacts who have an address, consent to
    marketing e-mail and never bounced (one insert from a select)."""
    from trellis_marketing.campaigns import PURPOSE, never_bounced

    template_id = params["template_id"]
    if session.get(EmailTemplate, template_id) is None:
        raise ActionError({"template_id": [f"No e-mail template with id {template_id}."]})
    targets = contact_ids(session, model, ids)
    if not targets:
        return {"queued": 0, "skipped": 0}
    rows = (select(literal(template_id), Contact.id, Contact.email, literal("queued"),
                   literal(utcnow(), type_=Message.created_on.type))
            .where(Contact.id.in_(targets), Contact.email.is_not(None),
                   func.trim(Contact.email) != "",
                   consent.allowed(Contact.id, "email", PURPOSE), never_bounced(Contact.id)))
    queued = session.execute(insert(Message).from_select(
        ["template_id", "contact_id", "email", "status", "created_on"], rows)
        .returning(Message.id)).all()
    if queued:
        enqueue(journeys.SEND_JOB)
    return {"queued": len(queued), "skipped": len(targets) - len(queued)}


class EnrolJourneyParams(Schema):
    journey_id = fields.Integer(required=True, metadata={"description": "an active journey"})


def enrol_journey(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict:
    """Enrol the records' contacts in an active journey (those it lets in)."""
    journey = session.get(Journey, params["journey_id"])
    if journey is None or not journey.active:
        raise ActionError({"journey_id": [f"No active journey with id {params['journey_id']}."]})
    targets = contact_ids(session, model, ids)
    if not targets:
        return {"enrolled": 0}
    return {"enrolled": journeys.enrol_contacts(session, journey, targets, utcnow())}


def actions() -> list[ActionSpec]:
    return [ActionSpec("marketing.send_template", "Send an e-mail from a template",
                       SendTemplateParams, send_template, models=("*",),
                       description="To the record's contact, if they consent to marketing "
                                   "e-mail."),
            ActionSpec("marketing.enrol_journey", "Enrol in a journey", EnrolJourneyParams,
                       enrol_journey, models=("*",),
                       description="The record's contact enters the journey.")]
