"""Segments: a condition tree (:mod:`trellis.conditions`) evaluated by one SQL query.

* dynamic segments are re-evaluated whenever they are used (preview, campaign);
* static segments keep the snapshot of their members (``marketing_segment_member``)
  taken when created and whenever :func:`snapshot` runs again (``POST
  /api/v1/segment/<id>/snapshot``);
* a *tracked* segment (one a journey is triggered by, or with ``emit_events``)
  remembers who was in it at the last pass (``marketing_segment_presence``), so
  :func:`track` can say who entered and who left since.

Every function here is set-based: a snapshot is one ``DELETE`` and one
``INSERT … SELECT``; a preview one ``COUNT`` and one ``SELECT … LIMIT``.
"""

from __future__ import annotations

from typing import Any

from datetime import datetime

from sqlalchemy import Select, delete, func, insert, literal, select

from trellis import conditions, events, rules
from trellis.db import utcnow
from trellis.models import Account, Contact
from trellis_marketing.models import SEGMENT_KINDS, Segment, SegmentMember, SegmentPresence

#: Most rows a preview returns.
MAX_PREVIEW = 100


def rules_errors(tree: Any, prefix: str = "rules") -> dict[str, list[str]]:
    """Condition-tree errors keyed by the full field path (``rules.and.1.value``)."""
    return {f"{prefix}.{path}" if path != "(root)" else prefix: messages
            for path, messages in conditions.validate(tree).items()}


def segment_validate(segment: Segment) -> dict[str, list[str]]:
    """``Segment`` validate: a name, a kind and a valid condition tree."""
    errors: dict[str, list[str]] = {}
    if not (segment.name or "").strip():
        errors["name"] = ["Must not be empty."]
    if segment.kind not in SEGMENT_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(SEGMENT_KINDS)}."]
    if segment.rules is None:
        errors["rules"] = ["Missing data for required field."]
    else:
        errors.update(rules_errors(segment.rules))
    return errors


def segment_before_save(session: Any, segment: Segment, action: str) -> None:
    """``Segment`` before_save: a kind by default."""
    if action != "deleted" and not segment.kind:
        segment.kind = "dynamic"


def members(segment: Segment) -> Select:
    """``select(contact_id)`` of the segment's members (re-evaluated when dynamic,
    the snapshot when static)."""
    if segment.kind == "static":
        return select(SegmentMember.contact_id.label("contact_id")).where(
            SegmentMember.segment_id == segment.id)
    return conditions.compile(segment.rules)


def track(session: Any, segment: Segment, now: datetime) -> tuple[list[int], list[int]]:
    """Who entered and who left ``segment`` since the last pass, as contact ids;
    the presence table then holds the members at ``now``.  Two statements
    (``INSERT … SELECT … RETURNING``, ``DELETE … RETURNING``) whatever the size.

    The first pass over a segment only records who is in (nobody "entered" a
    segment that was not watched).  With ``emit_events`` each change also fires
    ``segment.entered`` / ``segment.left`` (``contact_id``, ``segment_id``) after
    the commit.  The caller commits.
    """
    P = SegmentPresence
    current = members(segment).subquery()
    entered = list(session.scalars(insert(P).from_select(
        ["segment_id", "contact_id", "since"],
        select(literal(segment.id), current.c.contact_id, literal(now, type_=P.since.type))
        .where(~select(P.contact_id).where(P.segment_id == segment.id,
                                           P.contact_id == current.c.contact_id).exists())
    ).returning(P.contact_id)))
    left = list(session.scalars(delete(P).where(
        P.segment_id == segment.id,
        P.contact_id.not_in(select(current.c.contact_id))).returning(P.contact_id)))
    if segment.tracked_since is None:
        segment.tracked_since = now
        return [], []
    if segment.emit_events:
        for name, ids in (("segment.entered", entered), ("segment.left", left)):
            for contact_id in sorted(ids):
                events.emit(name, {"contact_id": contact_id, "segment_id": segment.id,
                                   "segment": segment.name}, plugin="marketing")
    return sorted(entered), sorted(left)


def snapshot(session: Any, segment: Segment) -> int:
    """Take a static segment's snapshot now (replacing the previous one); the
    number of members.  The caller commits."""
    now = utcnow()
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    sub = conditions.compile(segment.rules).subquery()
    session.execute(insert(SegmentMember).from_select(
        ["segment_id", "contact_id", "added_at"],
        select(literal(segment.id), sub.c.contact_id,
               literal(now, type_=SegmentMember.added_at.type))))
    count = session.scalar(select(func.count()).select_from(SegmentMember)
                           .where(SegmentMember.segment_id == segment.id))
    segment.member_count = count
    segment.evaluated_at = now
    return int(count or 0)


def preview(session: Any, ids: Select, limit: int = 10) -> dict[str, Any]:
    """``{"count", "rows"}`` of the contacts in ``ids`` (a select of contact ids)
    the current user may see: the count and the first ``limit`` by name."""
    sub = ids.subquery()
    base = rules.restrict(select(Contact.id).where(Contact.id.in_(select(sub.c.contact_id))),
                          Contact)
    count = session.scalar(select(func.count()).select_from(base.subquery()))
    visible = base.subquery()
    rows = session.execute(
        select(Contact.id, Contact.first_name, Contact.last_name, Contact.email,
               Account.name)
        .outerjoin(Account, Account.id == Contact.account_id)
        .where(Contact.id.in_(select(visible.c.id)))
        .order_by(Contact.last_name, Contact.first_name, Contact.id)
        .limit(max(0, min(int(limit), MAX_PREVIEW)))).all()
    return {"count": int(count or 0),
            "rows": [{"id": r[0], "first_name": r[1], "last_name": r[2], "email": r[3],
                      "company": r[4]} for r in rows]}
