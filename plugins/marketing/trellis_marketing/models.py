"""The marketing plugin's tables: segments (and their static snapshots), e-mail
templates, campaigns and one message per recipient, journeys and the durable
state of each contact in a journey."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Optional

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis.db import Model, utcnow

SEGMENT_KINDS = ("dynamic", "static")


class Segment(Model):
    """Which contacts: a condition tree (:mod:`trellis.conditions`).  A *dynamic*
    segment is re-evaluated whenever it is used; a *static* one is the snapshot of
    its members taken when it was created or last refreshed."""

    __tablename__ = "marketing_segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[Optional[str]] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10), default="dynamic")
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    #: Members at the last evaluation (snapshot or preview of a campaign send).
    member_count: Mapped[Optional[int]] = mapped_column(Integer)
    evaluated_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    owner: Mapped[Optional[User]] = relationship(User, foreign_keys=[owner_id])

    def __repr__(self) -> str:
        return self.name


class SegmentMember(Model):
    """A contact in a static segment's snapshot."""

    __tablename__ = "marketing_segment_member"
    __table_args__ = (Index("ix_marketing_segment_member_contact", "contact_id"),)

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
