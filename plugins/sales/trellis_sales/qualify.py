"""Reacting to the scoring plugin's ``scoring.lead_qualified`` event: a new or
contacted lead whose score reached the threshold becomes ``qualified`` and
keeps the score.  The sales plugin knows nothing else of scoring."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from trellis.db import db
from trellis.events import Event
from trellis_sales.models import Lead


def qualify_lead(evt: Event) -> None:
    """Handler of ``scoring.lead_qualified`` (``lead_id``, ``score``)."""
    lead_id = (evt.data or {}).get("lead_id")
    lead = db.session.get(Lead, lead_id) if isinstance(lead_id, int) else None
    if lead is None or lead.status not in ("new", "contacted"):
        return
    lead.status = "qualified"
    try:
        lead.score = Decimal(str(evt.data.get("score"))).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        pass
    db.session.commit()
