"""The sales plugin's tables: pipelines, leads, deals, products, orders, tasks."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis.db import Model, utcnow
from trellis.models import Account, Contact

MONEY = Numeric(14, 2)

LEAD_SOURCES = ("web_form", "import", "campaign", "manual", "api", "referral", "event")
LEAD_STATUSES = ("new", "contacted", "qualified", "disqualified", "converted")
TASK_KINDS = ("call", "email", "meeting", "todo")


class Pipeline(Model):
    __tablename__ = "sales_pipeline"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    stages: Mapped[list["Stage"]] = relationship(back_populates="pipeline",
                                                 order_by="Stage.position")

    def __repr__(self) -> str:
        return self.name


class Stage(Model):
    __tablename__ = "sales_stage"
    __table_args__ = (UniqueConstraint("pipeline_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("sales_pipeline.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    is_lost: Mapped[bool] = mapped_column(Boolean, default=False)

    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")

    def __repr__(self) -> str:
        return f"{self.pipeline.name if self.pipeline else ''} / {self.name}"


class Lead(Model):
    __tablename__ = "sales_lead"
    __table_args__ = (Index("ix_sales_lead_owner_status", "owner_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[Optional[str]] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    phone: Mapped[Optional[str]] = mapped_column(String(50))
    company: Mapped[Optional[str]] = mapped_column(String(200))
    title: Mapped[Optional[str]] = mapped_column(String(100))
    industry: Mapped[Optional[str]] = mapped_column(String(100))
    country: Mapped[Optional[str]] = mapped_column(String(2))
    source: Mapped[str] = mapped_column(String(20), default="manual")
    status: Mapped[str] = mapped_column(String(20), default="new")
    score: Mapped[Optional[float]] = mapped_column(Numeric(6, 2))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
    converted_contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"))
    converted_deal_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("sales_deal.id", ondelete="SET NULL"), index=True)
    #: First-response SLA: when the lead must be contacted by (business hours),
    #: when it first was, and when it was escalated for being about to miss it.
    response_due_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True),
                                                                index=True)
    first_contacted_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    sla_escalated_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: When the SLA job first found the lead at risk / breached (its event fires once).
    sla_at_risk_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    sla_breached_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    owner: Mapped[Optional[User]] = relationship(User, foreign_keys=[owner_id])

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    def __repr__(self) -> str:
        return f"{self.name} ({self.company})" if self.company else self.name


class Deal(Model):
    """An opportunity in a pipeline."""

    __tablename__ = "sales_deal"
    __table_args__ = (
        # a board column (pipeline, stage), its cards most recently updated first
        Index("ix_sales_deal_stage_updated", "pipeline_id", "stage_id", "updated_on", "id"),
        Index("ix_sales_deal_owner", "owner_id"),
        # a rep's deals won in a period (quota attainment)
        Index("ix_sales_deal_owner_won", "owner_id", "won_at",
              postgresql_where=text("won_at IS NOT NULL"),
              sqlite_where=text("won_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_account.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"), index=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("sales_pipeline.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("sales_stage.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    probability: Mapped[int] = mapped_column(Integer, default=0)
    #: True once someone set a probability other than the stage default; a
    #: later stage change then keeps it instead of recomputing.
    probability_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_close: Mapped[Optional[date]] = mapped_column(Date)
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    lost_reason: Mapped[Optional[str]] = mapped_column(String(200))
    won_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    lost_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: Last time anything happened on the deal (a change, a task created or done):
    #: the stale-deal job looks for open deals where this is N days old.
    last_activity_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True),
                                                                 default=utcnow)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    account: Mapped[Optional[Account]] = relationship()
    contact: Mapped[Optional[Contact]] = relationship()
    pipeline: Mapped[Pipeline] = relationship()
    stage: Mapped[Stage] = relationship()
    owner: Mapped[Optional[User]] = relationship(User, foreign_keys=[owner_id])
    lines: Mapped[list["DealLine"]] = relationship(back_populates="deal",
                                                   cascade="all, delete-orphan")

    @property
    def expected_revenue(self) -> Decimal:
        """Amount × probability, in the deal's currency."""
        return (Decimal(self.amount or 0) * Decimal(self.probability or 0) / 100).quantize(
            Decimal("0.01"))

    @property
    def lines_total(self) -> Decimal:
        """The sum of the deal's product lines (the amount is entered separately)."""
        return sum((Decimal(line.total or 0) for line in self.lines), Decimal("0.00"))

    def __repr__(self) -> str:
        return self.name


class DealStageHistory(Model):
    """When a deal entered (and left) each stage, and who moved it."""

    __tablename__ = "sales_deal_stage_history"
    __table_args__ = (Index("ix_sales_history_deal", "deal_id", "entered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("sales_deal.id", ondelete="CASCADE"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("sales_stage.id"))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    left_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))

    deal: Mapped[Deal] = relationship()
    stage: Mapped[Stage] = relationship()

    @property
    def days_in_stage(self) -> float:
        """Days spent in the stage: until it left, or until now while it is there."""
        end = self.left_at or utcnow()
        start = self.entered_at
        if start.tzinfo is None:  # SQLite returns naive UTC
            start = start.replace(tzinfo=end.tzinfo)
        if end.tzinfo is None:
            end = end.replace(tzinfo=start.tzinfo)
        return round((end - start).total_seconds() / 86400, 2)


class Product(Model):
    __tablename__ = "sales_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __repr__(self) -> str:
        return f"{self.name} ({self.sku})"


class ProductLine:
    """Quantity, price and total of a product on a deal or an order."""

    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))


class DealLine(ProductLine, Model):
    __tablename__ = "sales_deal_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("sales_deal.id", ondelete="CASCADE"),
                                         index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("sales_product.id"))

    deal: Mapped[Deal] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class Order(Model):
    """What a customer bought: the purchase history scoring and marketing use."""

    __tablename__ = "sales_order"
    __table_args__ = (Index("ix_sales_order_contact_time", "contact_id", "ordered_at"),
                      Index("ix_sales_order_account_time", "account_id", "ordered_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"))
    account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_account.id", ondelete="SET NULL"))
    deal_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sales_deal.id",
                                                              ondelete="SET NULL"))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    ordered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))

    contact: Mapped[Optional[Contact]] = relationship()
    account: Mapped[Optional[Account]] = relationship()
    deal: Mapped[Optional[Deal]] = relationship()
    lines: Mapped[list["OrderLine"]] = relationship(back_populates="order",
                                                    cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"Order #{self.id}"


class OrderLine(ProductLine, Model):
    __tablename__ = "sales_order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id", ondelete="CASCADE"),
                                          index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("sales_product.id"), index=True)

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class Task(Model):
    """A follow-up: a call, e-mail, meeting or to-do with a due time."""

    __tablename__ = "sales_task"
    __table_args__ = (Index("ix_sales_task_owner_due", "owner_id", "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="todo")
    subject: Mapped[str] = mapped_column(String(200))
    notes: Mapped[Optional[str]] = mapped_column(Text)
    due_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    lead_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sales_lead.id",
                                                              ondelete="CASCADE"))
    contact_id: Mapped[Optional[int]] = mapped_column(ForeignKey("trellis_contact.id",
                                                                 ondelete="CASCADE"))
    deal_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sales_deal.id",
                                                              ondelete="CASCADE"))
    #: When the owner was told the task is due soon / overdue (each told once).
    reminder_sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    overdue_sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: Set on tasks created by the stale-deal job or a follow-up plan.
    origin: Mapped[Optional[str]] = mapped_column(String(20))

    owner: Mapped[Optional[User]] = relationship(User, foreign_keys=[owner_id])
    lead: Mapped[Optional[Lead]] = relationship()
    contact: Mapped[Optional[Contact]] = relationship()
    deal: Mapped[Optional[Deal]] = relationship()

    def __repr__(self) -> str:
        return self.subject


ASSIGNMENT_FIELDS = ("any", "country", "industry", "source")


class AssignmentRule(Model):
    """Who gets new unowned leads: the first matching rule (by position) hands the
    lead round-robin to a member of its team."""

    __tablename__ = "sales_assignment_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    field: Mapped[str] = mapped_column(String(16), default="any")
    value: Mapped[Optional[str]] = mapped_column(String(100))
    team_id: Mapped[int] = mapped_column(ForeignKey("trellis_team.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    team = relationship("Team")

    def __repr__(self) -> str:
        return f"{self.field}={self.value or '*'} → {self.team}"


class FollowUpPlan(Model):
    """A cadence such as "call on day 1, e-mail on day 3, meeting on day 7",
    applied to a lead or a deal in one click."""

    __tablename__ = "sales_followup_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[Optional[str]] = mapped_column(Text)

    steps: Mapped[list["FollowUpStep"]] = relationship(
        back_populates="plan", cascade="all, delete-orphan",
        order_by="(FollowUpStep.day, FollowUpStep.id)")

    def __repr__(self) -> str:
        return self.name


class FollowUpStep(Model):
    __tablename__ = "sales_followup_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("sales_followup_plan.id",
                                                    ondelete="CASCADE"), index=True)
    #: Days after the plan is applied (1 = the next day); due at that day's start
    #: of business in the default calendar.
    day: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(10), default="call")
    subject: Mapped[str] = mapped_column(String(200))

    plan: Mapped[FollowUpPlan] = relationship(back_populates="steps")

    def __repr__(self) -> str:
        return f"day {self.day}: {self.kind} {self.subject}"


class Quota(Model):
    """A rep's sales target for a period, in the company currency."""

    __tablename__ = "sales_quota"
    __table_args__ = (UniqueConstraint("user_id", "period_start", name="uq_sales_quota_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)

    user: Mapped[User] = relationship(User, foreign_keys=[user_id])

    def __repr__(self) -> str:
        return f"{self.user} {self.period_start}–{self.period_end}"


# Duplicate warnings and conversion match leads by e-mail ignoring case.
Index("ix_sales_lead_email_lower", func.lower(Lead.__table__.c.email))
