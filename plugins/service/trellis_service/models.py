"""The service plugin's tables: tickets and their thread, categories, agent
availability and SLA policies.  Teams are the core's :class:`trellis.models.Team`."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis.db import Model, utcnow
from trellis.models import Account, Contact, Team

CHANNELS = ("email", "phone", "web_form", "chat", "api")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("new", "open", "pending", "resolved", "closed")
#: The status workflow: where a ticket may go from each status.  ``resolved``
#: and ``closed`` go back to ``open`` (reopen).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("open", "pending", "resolved", "closed"),
    "open": ("pending", "resolved", "closed"),
    "pending": ("open", "resolved", "closed"),
    "resolved": ("open", "closed"),
    "closed": ("open",),
}
#: Statuses in which the SLA clocks run.
ACTIVE_STATUSES = ("new", "open")
MESSAGE_KINDS = ("customer", "reply", "note", "call")


class Category(Model):
    """A ticket category; ``team_id`` routes its new tickets to a team."""

    __tablename__ = "service_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    team_id: Mapped[Optional[int]] = mapped_column(ForeignKey("trellis_team.id",
                                                              ondelete="SET NULL"))

    team: Mapped[Optional[Team]] = relationship(Team)

    def __repr__(self) -> str:
        return self.name


class AgentStatus(Model):
    """An agent's availability: away agents get no automatic assignments."""

    __tablename__ = "service_agent_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         unique=True)
    away: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship(User)

    def __repr__(self) -> str:
        return f"{self.user} ({'away' if self.away else 'available'})"


class SlaPolicy(Model):
    """Targets for one priority (and optionally one customer tier), in business
    hours of the default calendar."""

    __tablename__ = "service_sla_policy"
    __table_args__ = (UniqueConstraint("priority", "tier",
                                       name="uq_service_sla_policy_priority_tier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[str] = mapped_column(String(10))
    #: The customer tier it applies to (the feature named by the setting
    #: ``sla_tier_feature``); empty: every customer without a policy of their own.
    tier: Mapped[Optional[str]] = mapped_column(String(50))
    first_response_hours: Mapped[float] = mapped_column(Float)
    resolution_hours: Mapped[float] = mapped_column(Float)

    def __repr__(self) -> str:
        return (f"{self.priority}{'/' + self.tier if self.tier else ''}: "
                f"{self.first_response_hours}h / {self.resolution_hours}h")


class Ticket(Model):
    """A customer's request.  ``assignee_id`` is the owner for record rules."""

    __tablename__ = "service_ticket"
    __table_args__ = (Index("ix_service_ticket_status_assignee", "status", "assignee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    description: Mapped[Optional[str]] = mapped_column(Text)
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_account.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="api")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    category_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("service_category.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="new")
    assignee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    team_id: Mapped[Optional[int]] = mapped_column(ForeignKey("trellis_team.id",
                                                              ondelete="SET NULL"))
    tags: Mapped[Optional[str]] = mapped_column(String(255))
    #: The customer's address for e-mail replies, and the Message-ID of the
    #: message that opened the ticket (threading).
    email: Mapped[Optional[str]] = mapped_column(String(255))
    message_id: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    first_response_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: SLA: due times (business hours), the pause while pending, and when the
    #: SLA job first found the ticket at risk / breached / escalated it.
    first_response_due_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    resolution_due_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True),
                                                                  index=True)
    #: Business hours from creation to the first reply / to resolution (reports).
    first_response_hours: Mapped[Optional[float]] = mapped_column(Float)
    resolution_hours: Mapped[Optional[float]] = mapped_column(Float)
    sla_paused_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    sla_paused_hours: Mapped[float] = mapped_column(Float, default=0.0)
    sla_at_risk_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    sla_breached_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    sla_escalated_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    contact: Mapped[Optional[Contact]] = relationship(Contact)
    account: Mapped[Optional[Account]] = relationship(Account)
    category: Mapped[Optional[Category]] = relationship(Category)
    assignee: Mapped[Optional[User]] = relationship(User, foreign_keys=[assignee_id])
    team: Mapped[Optional[Team]] = relationship(Team)
    # module-qualified: every plugin's models share one registry of class names
    messages: Mapped[list["TicketMessage"]] = relationship(
        "trellis_service.models.TicketMessage", back_populates="ticket",
        order_by="trellis_service.models.TicketMessage.id", cascade="all, delete-orphan")

    @property
    def sla_state(self) -> str | None:
        """``met``, ``on_track``, ``at_risk``, ``paused`` or ``breached`` (one query)."""
        from sqlalchemy.orm import object_session

        from trellis_service import sla

        session = object_session(self)
        if self.id is None or session is None:
            return None
        return sla.states(session, [self.id]).get(self.id)

    @property
    def satisfaction(self) -> str | None:
        """The customer's answer to the survey: ``"4/5: comment"`` (None: none yet)."""
        from sqlalchemy import select
        from sqlalchemy.orm import object_session

        session = object_session(self)
        if self.id is None or session is None:
            return None
        row = session.execute(select(Survey.rating, Survey.comment).where(
            Survey.ticket_id == self.id, Survey.rating.is_not(None))).first()
        if row is None:
            return None
        return f"{row.rating}/5" + (f": {row.comment}" if row.comment else "")

    @property
    def reference(self) -> str:
        """``[#<id>]``: put in e-mail subjects so replies find the ticket."""
        return f"[#{self.id}]"

    def __repr__(self) -> str:
        return f"#{self.id} {self.subject}"


class TicketMessage(Model):
    """One entry of a ticket's thread: the customer's message, an agent's public
    reply, an internal note (never shown or sent to the customer), or a logged
    phone call (internal too; counts as a response)."""

    __tablename__ = "service_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("service_ticket.id", ondelete="CASCADE"),
                                           index=True)
    kind: Mapped[str] = mapped_column(String(10), default="reply")
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    from_email: Mapped[Optional[str]] = mapped_column(String(255))
    message_id: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    in_reply_to: Mapped[Optional[str]] = mapped_column(String(255))
    sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    ticket: Mapped[Ticket] = relationship(Ticket, back_populates="messages")
    author: Mapped[Optional[User]] = relationship(User, foreign_keys=[author_id])

    @property
    def internal(self) -> bool:
        return self.kind in ("note", "call")

    def __repr__(self) -> str:
        return f"{self.kind} on #{self.ticket_id}"


ARTICLE_STATUSES = ("draft", "published")


class Article(Model):
    """A knowledge-base article; only ``published`` ones reach the help centre.
    Its title and body are full-text indexed (:mod:`trellis.fulltext`)."""

    __tablename__ = "service_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[Optional[str]] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    views: Mapped[int] = mapped_column(Integer, default=0)
    helpful_yes: Mapped[int] = mapped_column(Integer, default=0)
    helpful_no: Mapped[int] = mapped_column(Integer, default=0)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    author: Mapped[Optional[User]] = relationship(User, foreign_keys=[author_id])

    def __repr__(self) -> str:
        return self.title


class Survey(Model):
    """The satisfaction survey of a resolved ticket: sent once, answered once
    (1–5 and a comment, optionally NPS 0–10).  Follows its ticket's record rule."""

    __tablename__ = "service_survey"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("service_ticket.id", ondelete="CASCADE"),
                                           unique=True)
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"), index=True)
    agent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    team_id: Mapped[Optional[int]] = mapped_column(ForeignKey("trellis_team.id",
                                                              ondelete="SET NULL"))
    sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    rating: Mapped[Optional[int]] = mapped_column(Integer)
    nps: Mapped[Optional[int]] = mapped_column(Integer)
    comment: Mapped[Optional[str]] = mapped_column(Text)
    answered_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    ticket: Mapped[Ticket] = relationship(Ticket)
    agent: Mapped[Optional[User]] = relationship(User, foreign_keys=[agent_id])
    team: Mapped[Optional[Team]] = relationship(Team)

    def __repr__(self) -> str:
        return f"survey of #{self.ticket_id}: {self.rating or '-'}"


class CannedResponse(Model):
    """A reusable answer with merge fields (sandboxed Jinja, :mod:`trellis.templating`);
    ``team_id`` limits it to one team's tickets (empty: every team)."""

    __tablename__ = "service_canned_response"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    team_id: Mapped[Optional[int]] = mapped_column(ForeignKey("trellis_team.id",
                                                              ondelete="CASCADE"))

    team: Mapped[Optional[Team]] = relationship(Team)

    def __repr__(self) -> str:
        return self.name


class Attachment(Model):
    """A file on a ticket (uploaded by an agent or sent by e-mail), stored in
    the database; only allowed types and sizes get in (:mod:`trellis_service.attachments`)."""

    __tablename__ = "service_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("service_ticket.id", ondelete="CASCADE"),
                                           index=True)
    message_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("service_message.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    ticket: Mapped[Ticket] = relationship(Ticket)

    def __repr__(self) -> str:
        return self.filename


class ArticleVersion(Model):
    """An earlier text of a knowledge-base article, kept at every change of its
    title or body (``version`` counts from 1)."""

    __tablename__ = "service_article_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("service_article.id", ondelete="CASCADE"),
                                            index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    saved_by: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    saved_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    article: Mapped[Article] = relationship(Article)

    def __repr__(self) -> str:
        return f"{self.article_id} v{self.version}"
