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
    #: Fire ``segment.entered`` / ``segment.left`` events for this dynamic segment
    #: (journeys triggered by the segment track it whatever this says).
    emit_events: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When membership tracking began (``None``: not tracked yet).  The first
    #: tracking pass records who is in without calling it an entry.
    tracked_since: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
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


class SegmentPresence(Model):
    """A contact in a tracked dynamic segment at the last tracking pass: what a
    segment's entries and exits are computed against."""

    __tablename__ = "marketing_segment_presence"
    __table_args__ = (Index("ix_marketing_segment_presence_contact", "contact_id"),)

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
MESSAGE_STATUSES = ("queued", "sending", "sent", "failed", "bounced", "opened", "clicked",
                    "unsubscribed")
AB_METRICS = ("opened", "clicked")


class EmailTemplate(Model):
    """Subject, HTML and text bodies with merge fields (:mod:`trellis.templating`)."""

    __tablename__ = "marketing_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(255))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[Optional[str]] = mapped_column(Text)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    def __repr__(self) -> str:
        return self.name


class Campaign(Model):
    """A segment, a template (optionally a B variant and a winner rule), a schedule."""

    __tablename__ = "marketing_campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("marketing_segment.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("marketing_template.id"))
    #: A/B: the B variant's template; ``ab_test_percent`` of the recipients get A or B
    #: (half each), the rest the winner by ``ab_metric`` after ``ab_wait_hours``.
    template_b_id: Mapped[Optional[int]] = mapped_column(ForeignKey("marketing_template.id"))
    ab_test_percent: Mapped[int] = mapped_column(Integer, default=20)
    ab_metric: Mapped[str] = mapped_column(String(10), default="opened")
    ab_wait_hours: Mapped[int] = mapped_column(Integer, default=4)
    ab_winner: Mapped[Optional[str]] = mapped_column(String(1))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    scheduled_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: What the campaign cost (company currency), for ROI.
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    #: Orders within this many days of a recipient's click count as conversions.
    conversion_days: Mapped[int] = mapped_column(Integer, default=7)
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    segment: Mapped[Segment] = relationship()
    template: Mapped[EmailTemplate] = relationship(foreign_keys=[template_id])
    template_b: Mapped[Optional[EmailTemplate]] = relationship(foreign_keys=[template_b_id])

    def __repr__(self) -> str:
        return self.name


class Message(Model):
    """One e-mail of a campaign (or a journey step) to one contact.

    ``(campaign_id, contact_id)`` is unique: a contact never gets two e-mails of a
    campaign.  A sender *claims* a queued message (``status='sending'``, a claim
    token and time) and commits before it talks to the SMTP server."""

    __tablename__ = "marketing_message"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_marketing_message_recipient"),
        UniqueConstraint("journey_step_key", name="uq_marketing_message_journey_step"),
        Index("ix_marketing_message_campaign_status", "campaign_id", "status"),
        Index("ix_marketing_message_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("marketing_campaign.id", ondelete="CASCADE"))
    journey_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    #: ``<enrolment id>:<step index>`` for journey e-mails (unique: once per step).
    journey_step_key: Mapped[Optional[str]] = mapped_column(String(40))
    template_id: Mapped[Optional[int]] = mapped_column(ForeignKey("marketing_template.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(255))
    variant: Mapped[Optional[str]] = mapped_column(String(1))
    status: Mapped[str] = mapped_column(String(14), default="queued")
    claim_token: Mapped[Optional[str]] = mapped_column(String(32))
    claimed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    clicked_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    unsubscribed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    bounced_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    error: Mapped[Optional[str]] = mapped_column(String(500))
    smtp_message_id: Mapped[Optional[str]] = mapped_column(String(255))

    campaign: Mapped[Optional[Campaign]] = relationship()


TRIGGER_KINDS = ("activity", "event", "segment")
SEGMENT_CHANGES = ("entered", "left")
ENROLMENT_STATUSES = ("active", "done", "exited")


class Journey(Model):
    """Marketing automation: a trigger enrols contacts, who then run ``steps``
    (JSON list, see :mod:`trellis_marketing.journeys`) one by one."""

    __tablename__ = "marketing_journey"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: ``activity`` (a timeline activity of a type, e.g. product.viewed), ``event``
    #: (a Trellis event with a contact, e.g. lead.created) or ``segment`` (contacts
    #: entering or leaving a segment: dates such as renewals are segment conditions).
    trigger_kind: Mapped[str] = mapped_column(String(10), default="activity")
    trigger_activity_type: Mapped[Optional[str]] = mapped_column(String(64))
    trigger_payload: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    trigger_event: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    trigger_segment_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("marketing_segment.id"))
    #: For a segment trigger: enrol contacts who ``entered`` or who ``left`` it.
    trigger_segment_change: Mapped[str] = mapped_column(String(8), default="entered")
    allow_reentry: Mapped[bool] = mapped_column(Boolean, default=False)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: The last activity id the trigger looked at.
    cursor_activity_id: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    conversion_days: Mapped[int] = mapped_column(Integer, default=7)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    trigger_segment: Mapped[Optional[Segment]] = relationship(Segment)

    def __repr__(self) -> str:
        return self.name


class JourneyEnrolment(Model):
    """One contact's durable state in a journey: the step it is at and since when.

    ``(journey_id, contact_id, entry_no)`` is unique: without re-entry a contact
    can only ever have entry 1."""

    __tablename__ = "marketing_journey_enrolment"
    __table_args__ = (
        UniqueConstraint("journey_id", "contact_id", "entry_no",
                         name="uq_marketing_enrolment_entry"),
        Index("ix_marketing_enrolment_due", "journey_id", "status", "step"),
        Index("ix_marketing_enrolment_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("marketing_journey.id",
                                                       ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id",
                                                       ondelete="CASCADE"))
    entry_no: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(8), default="active")
    step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    exit_reason: Mapped[Optional[str]] = mapped_column(String(100))
    #: What triggered it (the activity's payload, the event's payload): ``$trigger.x``.
    context: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
