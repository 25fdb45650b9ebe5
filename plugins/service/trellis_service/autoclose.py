"""Job ``service.auto_close``: resolved tickets close after ``auto_close_days``
days without being reopened — one ``UPDATE``, one multi-row ``INSERT`` of their
``ticket.closed`` timeline entries, and one ``tickets.auto_closed`` event
carrying their ids (not one event per ticket: a first run on a large desk
closes thousands)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from trellis.db import db
from trellis.events import emit
from trellis.models import Activity
from trellis.settings import get_settings
from trellis_service import sla
from trellis_service.models import Ticket


def auto_close(now: Any = None) -> dict[str, int]:
    """Close resolved tickets older than the setting; ``now`` (ISO) is for tests."""
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    at = sla.utc(now) or sla.clock()
    cutoff = at - timedelta(days=get_settings("service")["auto_close_days"])
    due = (Ticket.status == "resolved", Ticket.resolved_at <= cutoff)
    rows = db.session.execute(select(Ticket.id, Ticket.contact_id, Ticket.account_id,
                                     Ticket.subject).where(*due)
                              .order_by(Ticket.id).with_for_update()).all()
    if rows:
        ids = [r.id for r in rows]
        db.session.execute(update(Ticket).where(Ticket.id.in_(ids), *due)
                           .values(status="closed", closed_at=at)
                           .execution_options(synchronize_session=False))
        timeline = [{"type": "ticket.closed", "subject": f"Ticket #{r.id} closed: {r.subject}"[:255],
                     "occurred_at": at, "contact_id": r.contact_id, "account_id": r.account_id,
                     "plugin": "service",
                     "payload": {"ticket_id": r.id, "old": "resolved", "new": "closed",
                                 "automatic": True}}
                    for r in rows if r.contact_id is not None or r.account_id is not None]
        if timeline:
            db.session.execute(insert(Activity), timeline)
    db.session.commit()
    if rows:
        emit("tickets.auto_closed", {"ticket_ids": [r.id for r in rows]}, plugin="service")
    return {"closed": len(rows)}
