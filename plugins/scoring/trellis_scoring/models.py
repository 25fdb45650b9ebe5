"""The scoring plugin's tables: weighted models and their terms, each
customer's current score per model, the score history and the recompute runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, Numeric,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis.db import Model, utcnow
from trellis.models import Contact

METHODS = ("percentile", "minmax")
DIRECTIONS = ("higher", "lower")
TIERS = ("high", "medium", "low")
#: The key of the built-in CRM value model (seeded by migration 0002).
CRM_VALUE = "crm_value"


class ScoringModel(Model):
    """A weighted model: value = Σ weightᵢ · normalised featureᵢ (weights summing to 1)."""

    __tablename__ = "scoring_model"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[Optional[str]] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    terms: Mapped[list["ScoringTerm"]] = relationship(back_populates="model",
                                                      cascade="all, delete-orphan",
                                                      order_by="ScoringTerm.position")

    def __repr__(self) -> str:
        return self.name


class ScoringTerm(Model):
    """One feature of a model, its weight and how it is normalised to 0–100."""

    __tablename__ = "scoring_term"
    __table_args__ = (UniqueConstraint("model_id", "feature", name="uq_scoring_term_feature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("scoring_model.id", ondelete="CASCADE"),
                                          index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    feature: Mapped[str] = mapped_column(String(64))
    label: Mapped[Optional[str]] = mapped_column(String(100))
    weight: Mapped[float] = mapped_column(Float, default=0.0)
    method: Mapped[str] = mapped_column(String(12), default="percentile")
    direction: Mapped[str] = mapped_column(String(8), default="higher")
    #: capped min-max: the cap is this percentile of the values, unless ``cap`` is set
    cap_percentile: Mapped[Optional[float]] = mapped_column(Float, default=95.0)
    floor: Mapped[Optional[float]] = mapped_column(Float)
    cap: Mapped[Optional[float]] = mapped_column(Float)
    #: the score of a customer without a value for the feature
    missing_score: Mapped[float] = mapped_column(Float, default=0.0)

    model: Mapped[ScoringModel] = relationship(back_populates="terms")

    def __repr__(self) -> str:
        return f"{self.feature} × {self.weight}"


class ScoringRun(Model):
    """One recompute of a model: the normalisation it used, for explanations and
    for scoring single customers incrementally against the same distribution."""

    __tablename__ = "scoring_run"
    __table_args__ = (Index("ix_scoring_run_model_started", "model_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("scoring_model.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12), default="full")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    customers: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[Optional[float]] = mapped_column(Float)
    #: [{feature, label, weight (normalised), method, direction, floor, cap,
    #:   missing_score, available, n, quantiles}] in term order
    terms: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class CustomerScore(Model):
    """A customer's current score in one model, with its explanation."""

    __tablename__ = "scoring_customer_score"
    __table_args__ = (
        UniqueConstraint("model_id", "contact_id", name="uq_scoring_score_contact"),
        Index("ix_scoring_score_model_tier_value", "model_id", "tier", "value"),
        Index("ix_scoring_score_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("scoring_model.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id",
                                                       ondelete="CASCADE"))
    value: Mapped[float] = mapped_column(Numeric(6, 2))
    tier: Mapped[str] = mapped_column(String(8))
    run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scoring_run.id",
                                                             ondelete="SET NULL"))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: [[feature value, normalised score], ...] in the order of the run's terms
    explanation: Mapped[Optional[list[Any]]] = mapped_column(JSON)

    model: Mapped[ScoringModel] = relationship()
    contact: Mapped[Contact] = relationship()
    run: Mapped[Optional[ScoringRun]] = relationship()


class ScoreHistory(Model):
    """A customer's score whenever it changed (value or tier)."""

    __tablename__ = "scoring_history"
    __table_args__ = (Index("ix_scoring_history_contact", "contact_id", "model_id",
                            "computed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("scoring_model.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id",
                                                       ondelete="CASCADE"))
    value: Mapped[float] = mapped_column(Numeric(6, 2))
    tier: Mapped[str] = mapped_column(String(8))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scoring_run.id",
                                                             ondelete="SET NULL"))

    model: Mapped[ScoringModel] = relationship()
    contact: Mapped[Contact] = relationship()


class ScoringCursor(Model):
    """How far a sweep has read (``activity``: the last activity id rescored)."""

    __tablename__ = "scoring_cursor"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class CustomerRfm(Model):
    """A customer's recency, frequency and monetary quintiles (5 best) and segment."""

    __tablename__ = "scoring_rfm"
    __table_args__ = (Index("ix_scoring_rfm_segment", "segment"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id", ondelete="CASCADE"),
                                            primary_key=True)
    recency_days: Mapped[float] = mapped_column(Float)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary: Mapped[float] = mapped_column(Numeric(18, 2))
    r: Mapped[int] = mapped_column(Integer)
    f: Mapped[int] = mapped_column(Integer)
    m: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(30))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    contact: Mapped[Contact] = relationship()


class Association(Model):
    """"Customers who bought X also buy Y": a product pair over all orders."""

    __tablename__ = "scoring_association"
    __table_args__ = (Index("ix_scoring_association_antecedent", "antecedent_id", "lift"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    antecedent_id: Mapped[int] = mapped_column(Integer)
    consequent_id: Mapped[int] = mapped_column(Integer)
    antecedent_name: Mapped[Optional[str]] = mapped_column(String(200))
    consequent_name: Mapped[Optional[str]] = mapped_column(String(200))
    #: orders holding both products
    orders: Mapped[int] = mapped_column(Integer)
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


LEAD_RULE_KINDS = ("profile", "behaviour")
#: Lead fields a profile rule may match.
LEAD_FIELDS = ("industry", "title", "country", "company", "source")


class LeadRule(Model):
    """Lead scoring points: ``profile`` (a lead field matching ``value``, ``*``
    wildcards, ignoring case) or ``behaviour`` (a signal of kind ``field``,
    decaying with the half-life setting)."""

    __tablename__ = "scoring_lead_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="profile")
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[Optional[str]] = mapped_column(String(200))
    points: Mapped[float] = mapped_column(Float, default=0.0)


class LeadSignal(Model):
    """Something a lead did (e-mail opened, page viewed, demo requested...)."""

    __tablename__ = "scoring_lead_signal"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("sales_lead.id", ondelete="CASCADE"),
                                         index=True)
    kind: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LeadScore(Model):
    """A lead's current score: profile points + decayed behaviour points (0–100)."""

    __tablename__ = "scoring_lead_score"

    lead_id: Mapped[int] = mapped_column(ForeignKey("sales_lead.id", ondelete="CASCADE"),
                                         primary_key=True)
    profile_points: Mapped[float] = mapped_column(Float)
    behaviour_points: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: when the score first reached the threshold (the event fired then, once)
    qualified_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class ChurnModel(Model):
    """A trained churn model: logistic regression coefficients and hold-out AUC."""

    __tablename__ = "scoring_churn_model"

    id: Mapped[int] = mapped_column(primary_key=True)
    trained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    features: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    coefficients: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    auc: Mapped[Optional[float]] = mapped_column(Float)
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    n_test: Mapped[int] = mapped_column(Integer, default=0)
    churn_rate: Mapped[Optional[float]] = mapped_column(Float)


class CustomerValue(Model):
    """A buyer's churn probability and lifetime value estimate."""

    __tablename__ = "scoring_customer_value"

    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id", ondelete="CASCADE"),
                                            primary_key=True)
    churn_probability: Mapped[Optional[float]] = mapped_column(Float)
    annual_value: Mapped[Optional[float]] = mapped_column(Float)
    clv: Mapped[Optional[float]] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
