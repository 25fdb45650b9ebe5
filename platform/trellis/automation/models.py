"""The tables of automation rules: the rules, their versions, their runs, and
which records a date-relative rule has fired for."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from trellis.db import Model, utcnow


class AutomationRule(Model):
    """A rule: *when* (trigger) something happens to records of ``model``, *if*
    (conditions) they match, *do* (actions).  Its definition is the current
    version; every change writes an :class:`AutomationRuleVersion`."""

    __tablename__ = "trellis_automation_rule"
    __table_args__ = (Index("ix_trellis_automation_rule_trigger", "trigger_kind",
                            "trigger_event", "enabled"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[Optional[str]] = mapped_column(Text)
    #: Registry name of the records the rule acts on (``deal``).
    model: Mapped[str] = mapped_column(String(64))
    #: ``record``, ``event``, ``schedule`` or ``date``.
    trigger_kind: Mapped[str] = mapped_column(String(20))
    #: The event name matched for ``record`` and ``event`` triggers (``deal.updated``,
    #: ``deal.won``); ``None`` otherwise.
    trigger_event: Mapped[Optional[str]] = mapped_column(String(100))
    #: The trigger's settings (see :mod:`trellis.automation.definition`).
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: A condition tree (:mod:`trellis.conditions`), ``None``: every record.
    conditions: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    #: ``[{"action": "core.add_tag", "params": {...}}, ...]``, run in order.
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: Schedule triggers: when the rule is due next (claimed by the automation tick).
    next_run_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: Date triggers: only dates falling due after this moment fire (no flood of
    #: old records when a rule is switched on).
    active_since: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    def __repr__(self) -> str:
        return self.name


class AutomationRuleVersion(Model):
    """An immutable snapshot of a rule's definition."""

    __tablename__ = "trellis_automation_rule_version"
    __table_args__ = (UniqueConstraint("rule_id", "version",
                                       name="uq_trellis_automation_rule_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("trellis_automation_rule.id",
                                                    ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: What made it: ``created``, ``updated`` or ``restored from N``.
    note: Mapped[Optional[str]] = mapped_column(String(100))
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id",
                                                                 ondelete="SET NULL"))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AutomationRun(Model):
    """One run of a rule (or a dry run): what triggered it, which records it
    looked at and matched, and each action's outcome."""

    __tablename__ = "trellis_automation_run"
    __table_args__ = (Index("ix_trellis_automation_run_rule", "rule_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("trellis_automation_rule.id",
                                                    ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    #: The event name, ``schedule``, ``date`` or ``dry_run``.
    trigger: Mapped[str] = mapped_column(String(100))
    #: The event's id when an event triggered the run (one run per rule and event).
    event_id: Mapped[Optional[str]] = mapped_column(String(32))
    record_ids: Mapped[list[int]] = mapped_column(JSON)
    matched_ids: Mapped[list[int]] = mapped_column(JSON)
    #: ``[{"action", "ok", "result" | "error"}]``.
    outcome: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: ``done``, ``no_match``, ``failed`` or ``loop_stopped``.
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[Optional[str]] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The rules whose actions led to this run, outermost first.
    chain: Mapped[list[int]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class AutomationFired(Model):
    """A date-relative rule fired for a record's date value (never twice)."""

    __tablename__ = "trellis_automation_fired"

    rule_id: Mapped[int] = mapped_column(ForeignKey("trellis_automation_rule.id",
                                                    ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The date value it fired for (ISO), so a new date fires again.
    fired_for: Mapped[str] = mapped_column(String(40), primary_key=True)
