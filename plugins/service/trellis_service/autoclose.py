"""Job ``service.auto_close``: resolved tickets close after ``auto_close_days``
days without being reopened, in one ``UPDATE``; each fires
``ticket.status_changed`` (so the timeline records it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from trellis.db import db
from trellis.events import emit
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
    rows = db.session.execute(select(Ticket.id, Ticket.contact_id).where(*due)
                              .order_by(Ticket.id)).all()
    if rows:
        db.session.execute(update(Ticket).where(Ticket.id.in_([r.id for r in rows]), *due)
                           .values(status="closed", closed_at=at)
                           .execution_options(synchronize_session=False))
    db.session.commit()
    for ticket_id, contact_id in rows:
        emit("ticket.status_changed", {"ticket_id": ticket_id, "contact_id": contact_id,
                                       "old": "resolved", "new": "closed", "reopened": False,
                                       "automatic": True}, plugin="service")
    return {"closed": len(rows)}
