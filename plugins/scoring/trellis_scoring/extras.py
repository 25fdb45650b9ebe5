"""Scores beyond the weighted models, recomputed with them (RFM, lifetime value,
churn risk): filled in by later parts of the plugin."""

from __future__ import annotations

from typing import Any


def recompute_extras(session: Any, contact_ids: list[int] | None = None) -> dict[str, Any]:
    """Recompute the extra scores (all customers, or ``contact_ids``)."""
    return {}


def contact_extras(contact_id: int) -> dict[str, Any]:
    """The extra scores of one contact, for the API and the panel."""
    return {}
