"""Per-customer figures that any plugin computes and any plugin reads.

A *feature* is a number (or a text or a date) per contact: how often they
interact, what they spent, how satisfied they are, their CRM value tier...
Plugins offer features with ``trellis_customer_features``
(:class:`~trellis.specs.FeatureSpec`); scoring models, segments, SLA tiers and
reports read them here, by name, without knowing which plugin computes them::

    stmt = features.query("purchase_total")          # select(contact_id, value)
    big = select(stmt.c.contact_id).where(stmt.c.value > 1000)   # as a subquery

Every feature is one set-based query over all contacts (one row per contact
that has a value), so it can be joined, filtered and aggregated in SQL.  The
core offers the activity features below; a disabled plugin's features are not
offered.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select

from trellis.specs import FeatureSpec

KINDS = ("number", "text", "date")


def _ext() -> Any:
    from trellis.extension import current_trellis

    return current_trellis()


def _custom() -> dict[str, FeatureSpec]:
    """The contacts' custom fields as features (``cf_<key>``), read at run time."""
    from trellis.customfield_conditions import features as custom_features

    return {spec.name: spec for spec in custom_features()}


def all() -> list[FeatureSpec]:  # noqa: A001 - the module is read as ``features.all()``
    """The features of the enabled plugins and the contacts' custom fields, by name."""
    ext = _ext()
    offered = {name: spec for name, (plugin, spec) in ext.features.items()
               if ext.is_enabled(plugin)}
    return [spec for _, spec in sorted({**_custom(), **offered}.items())]


def get(name: str) -> FeatureSpec | None:
    """The feature ``name``, or ``None`` when no enabled plugin offers it."""
    ext = _ext()
    found = ext.features.get(name)
    if found is None:
        return _custom().get(name) if name.startswith("cf_") else None
    if not ext.is_enabled(found[0]):
        return None
    return found[1]


def plugin_of(name: str) -> str | None:
    """The plugin offering feature ``name`` (enabled or not)."""
    found = _ext().features.get(name)
    return found[0] if found else None


def query(name: str) -> Select | None:
    """``select(contact_id, value)`` of feature ``name`` (``None`` when not offered)."""
    spec = get(name)
    return spec.query() if spec is not None else None


def values(session: Any, name: str, contact_ids: list[int] | None = None) -> dict[int, Any]:
    """``{contact_id: value}`` of one feature, for some contacts or all of them."""
    stmt = query(name)
    if stmt is None:
        raise KeyError(f"no enabled plugin offers the feature {name!r}")
    sub = stmt.subquery()
    read = select(sub.c.contact_id, sub.c.value)
    if contact_ids is not None:
        read = read.where(sub.c.contact_id.in_(contact_ids))
    return {cid: value for cid, value in session.execute(read)}


# ------------------------------------------------------------------ the core's own


def _now() -> Any:
    from trellis.db import utcnow

    return utcnow()


def interactions_90d() -> Select:
    """Activities on the contact's timeline in the last 90 days."""
    from trellis.models import Activity

    return (select(Activity.contact_id.label("contact_id"), func.count().label("value"))
            .where(Activity.contact_id.is_not(None),
                   Activity.occurred_at >= _now() - timedelta(days=90))
            .group_by(Activity.contact_id))


def last_interaction_at() -> Select:
    """When the contact's latest activity happened."""
    from trellis.models import Activity

    return (select(Activity.contact_id.label("contact_id"),
                   func.max(Activity.occurred_at).label("value"))
            .where(Activity.contact_id.is_not(None))
            .group_by(Activity.contact_id))


def days_since_last_interaction() -> Select:
    """Days (fractional) since the contact's latest activity (recency)."""
    from trellis.sqlfuncs import days_between

    last = last_interaction_at().subquery()
    return select(last.c.contact_id.label("contact_id"),
                  days_between(last.c.value, _now()).label("value"))


def core_features() -> list[FeatureSpec]:
    """The core's features (``trellis_customer_features`` of the core plugin)."""
    return [
        FeatureSpec("interactions_90d", "Interactions in the last 90 days", interactions_90d,
                    description="Activities of any kind on the contact's timeline."),
        FeatureSpec("last_interaction_at", "Last interaction", last_interaction_at, kind="date"),
        FeatureSpec("days_since_last_interaction", "Days since the last interaction",
                    days_since_last_interaction),
    ]
