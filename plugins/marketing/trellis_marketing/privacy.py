"""Personal data of the marketing plugin: a contact's messages and journey entries
(``trellis_personal_data``); on erasure their e-mail address and tracking times
are removed from the messages (the counts in campaign metrics stay) and the
journey context is cleared (``trellis_erase_personal_data``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from trellis_marketing.models import Campaign, Journey, JourneyEnrolment, Message


def personal_data(session: Any, contact_id: int) -> dict[str, Any] | None:
    messages = session.execute(
        select(Message.id, Campaign.name, Message.journey_id, Message.email, Message.status,
               Message.sent_at, Message.opened_at, Message.clicked_at,
               Message.unsubscribed_at)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.contact_id == contact_id).order_by(Message.id)).all()
    entries = session.execute(
        select(Journey.name, JourneyEnrolment.status, JourneyEnrolment.step,
               JourneyEnrolment.entered_at, JourneyEnrolment.finished_at,
               JourneyEnrolment.context)
        .join(Journey, Journey.id == JourneyEnrolment.journey_id)
        .where(JourneyEnrolment.contact_id == contact_id)
        .order_by(JourneyEnrolment.id)).all()
    if not messages and not entries:
        return None

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "messages": [{"id": m[0], "campaign": m[1], "journey_id": m[2], "email": m[3],
                      "status": m[4], "sent_at": iso(m[5]), "opened_at": iso(m[6]),
                      "clicked_at": iso(m[7]), "unsubscribed_at": iso(m[8])}
                     for m in messages],
        "journeys": [{"journey": e[0], "status": e[1], "step": e[2], "entered_at": iso(e[3]),
                      "finished_at": iso(e[4]), "context": e[5]} for e in entries],
    }


def erase(session: Any, contact_id: int) -> None:
    session.execute(update(Message).where(Message.contact_id == contact_id)
                    .values(email="", error=None, smtp_message_id=None),
                    execution_options={"synchronize_session": False})
    session.execute(update(JourneyEnrolment).where(JourneyEnrolment.contact_id == contact_id)
                    .values(context=None),
                    execution_options={"synchronize_session": False})
