"""The core's shared models: who the customers are and everything that happened.

Every plugin writes its interactions to :class:`Activity`, so a customer's
whole history is one query.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from flask_appbuilder.security.sqla.models import User
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis.crypto import Encrypted
from trellis.db import Model, utcnow

contact_tag = Table(
    "trellis_contact_tag",
    Model.metadata,
    Column("contact_id", ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("trellis_tag.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(Model):
    __tablename__ = "trellis_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    color: Mapped[Optional[str]] = mapped_column(String(16))

    def __repr__(self) -> str:
        return self.name


class Account(Model):
    """A company."""

    __tablename__ = "trellis_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    domain: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    industry: Mapped[Optional[str]] = mapped_column(String(100))
    phone: Mapped[Optional[str]] = mapped_column(String(50))
    country: Mapped[Optional[str]] = mapped_column(String(2))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    owner: Mapped[Optional[User]] = relationship(User, foreign_keys=[owner_id])
    contacts: Mapped[list["Contact"]] = relationship(back_populates="account")

    def __repr__(self) -> str:
        return self.name


class Contact(Model):
    """A person, optionally working for an :class:`Account`."""

    __tablename__ = "trellis_contact"
    __table_args__ = (Index("ix_trellis_contact_name", "last_name", "first_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    phone: Mapped[Optional[str]] = mapped_column(String(50))
    title: Mapped[Optional[str]] = mapped_column(String(100))
    #: Sensitive: stored encrypted (trellis.crypto), never in the audit log.
    national_id: Mapped[Optional[str]] = mapped_column(Encrypted())
    account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_account.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    account: Mapped[Optional[Account]] = relationship(back_populates="contacts")
    owner: Mapped[Optional[User]] = relationship(User, foreign_keys=[owner_id])
    tags: Mapped[list[Tag]] = relationship(secondary=contact_tag)

    @property
    def name(self) -> str:
        from trellis.i18n import person_name

        return person_name(self.first_name, self.last_name)

    def __repr__(self) -> str:
        return self.name


# Case-insensitive lookups (duplicate warnings, lead conversion) match on these
# expressions; without them every new contact would scan the table.
Index("ix_trellis_contact_email_lower", func.lower(Contact.email))
Index("ix_trellis_contact_name_lower", func.lower(Contact.last_name),
      func.lower(Contact.first_name))
Index("ix_trellis_account_name_lower", func.lower(Account.name))
Index("ix_trellis_account_domain_lower", func.lower(Account.domain))


class Activity(Model):
    """One interaction on the unified customer timeline.

    ``plugin`` is the plugin that wrote it; ``type`` is free-form but
    namespaced by convention (``email``, ``call``, ``deal.stage_changed``).
    """

    __tablename__ = "trellis_activity"
    __table_args__ = (
        Index("ix_trellis_activity_contact_time", "contact_id", "occurred_at"),
        Index("ix_trellis_activity_account_time", "account_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255), default="")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="CASCADE")
    )
    account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_account.id", ondelete="CASCADE")
    )
    plugin: Mapped[str] = mapped_column(String(64), default="core")
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    payload: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)

    contact: Mapped[Optional[Contact]] = relationship()
    account: Mapped[Optional[Account]] = relationship()

    def __repr__(self) -> str:
        return f"{self.type}: {self.subject}"


class Note(Model):
    """A free-text note on a contact or an account."""

    __tablename__ = "trellis_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_account.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    contact: Mapped[Optional[Contact]] = relationship()
    account: Mapped[Optional[Account]] = relationship()

    def __repr__(self) -> str:
        return self.body[:40]


class AuditEntry(Model):
    """Who changed what, when: written in the same transaction as the change."""

    __tablename__ = "trellis_audit"
    __table_args__ = (Index("ix_trellis_audit_record", "model", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[Optional[int]] = mapped_column(Integer)
    username: Mapped[Optional[str]] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # ui, api, job, cli
    action: Mapped[str] = mapped_column(String(16))  # created, updated, deleted
    model: Mapped[str] = mapped_column(String(64), index=True)
    record_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)


class PluginState(Model):
    """Whether an installed plugin is enabled, and which version set up its schema."""

    __tablename__ = "trellis_plugin"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[Optional[str]] = mapped_column(String(32))
    changed_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class PluginSetting(Model):
    """A plugin's settings, validated by its schema before they are stored."""

    __tablename__ = "trellis_setting"

    plugin: Mapped[str] = mapped_column(String(64), primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


team_member = Table(
    "trellis_team_member",
    Model.metadata,
    Column("team_id", ForeignKey("trellis_team.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_trellis_team_member_user", "user_id"),
)


class Team(Model):
    """A group of users (a sales team, a support team); the unit of "team" record rules."""

    __tablename__ = "trellis_team"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    manager_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))

    manager: Mapped[Optional[User]] = relationship(User, foreign_keys=[manager_id])
    members: Mapped[list[User]] = relationship(User, secondary=team_member)

    def __repr__(self) -> str:
        return self.name


class RoleScope(Model):
    """Which records a role's users see of models that have an owner:
    ``own`` (theirs), ``team`` (their teams') or ``all``."""

    __tablename__ = "trellis_role_scope"

    role_id: Mapped[int] = mapped_column(ForeignKey("ab_role.id", ondelete="CASCADE"),
                                         primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), default="all")

    role = relationship("Role")

    def __repr__(self) -> str:
        return f"{self.role}: {self.scope}"


class Notification(Model):
    """An in-app message to one user (a task due, an SLA about to be missed).

    ``dedupe_key`` makes notifying idempotent: a periodic job that runs twice
    does not tell the same user the same thing twice.
    """

    __tablename__ = "trellis_notification"
    __table_args__ = (
        Index("ix_trellis_notification_user_unread", "user_id", "read_at"),
        UniqueConstraint("user_id", "dedupe_key", name="uq_trellis_notification_dedupe"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    plugin: Mapped[str] = mapped_column(String(64), default="core")
    kind: Mapped[str] = mapped_column(String(64), default="info")
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[Optional[str]] = mapped_column(Text)
    #: A path inside Trellis (``/dealview/show/3``), never an external URL.
    link: Mapped[Optional[str]] = mapped_column(String(500))
    dedupe_key: Mapped[Optional[str]] = mapped_column(String(200))
    read_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    emailed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(User, foreign_keys=[user_id])

    def __repr__(self) -> str:
        return self.subject


class UserPreference(Model):
    """Per-user choices: whether notifications are also e-mailed, locale, time zone."""

    __tablename__ = "trellis_user_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         primary_key=True)
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[Optional[str]] = mapped_column(String(10))
    timezone: Mapped[Optional[str]] = mapped_column(String(64))

    user: Mapped[User] = relationship(User, foreign_keys=[user_id])


class ExchangeRate(Model):
    """How much one unit of ``currency`` is worth in the company currency from
    ``valid_from`` on (until the next rate for that currency)."""

    __tablename__ = "trellis_exchange_rate"
    __table_args__ = (UniqueConstraint("currency", "valid_from",
                                       name="uq_trellis_exchange_rate_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    valid_from: Mapped[date] = mapped_column(Date)

    def __repr__(self) -> str:
        return f"{self.currency} {self.rate} from {self.valid_from}"


class BusinessCalendar(Model):
    """Working days and hours in a time zone, with holidays: what SLAs count in."""

    __tablename__ = "trellis_calendar"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: ISO weekday numbers (1 = Monday … 7 = Sunday), comma-separated: "1,2,3,4,5".
    work_days: Mapped[str] = mapped_column(String(20), default="1,2,3,4,5")
    #: Local opening and closing time, "HH:MM".
    day_start: Mapped[str] = mapped_column(String(5), default="09:00")
    day_end: Mapped[str] = mapped_column(String(5), default="17:00")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    holidays: Mapped[list["Holiday"]] = relationship(back_populates="calendar",
                                                     cascade="all, delete-orphan",
                                                     order_by="Holiday.day")

    def __repr__(self) -> str:
        return self.name


class Holiday(Model):
    __tablename__ = "trellis_holiday"
    __table_args__ = (UniqueConstraint("calendar_id", "day", name="uq_trellis_holiday_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("trellis_calendar.id",
                                                        ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(100), default="")

    calendar: Mapped[BusinessCalendar] = relationship(back_populates="holidays")

    def __repr__(self) -> str:
        return f"{self.day} {self.name}"


class MergeRecord(Model):
    """One merge of records into a winner (:mod:`trellis.merge`), with what undo needs.

    No foreign keys to the merged tables on purpose: a merge re-points every
    foreign key to the losers, and its own journal must not be re-pointed.
    """

    __tablename__ = "trellis_merge"
    __table_args__ = (Index("ix_trellis_merge_winner", "model", "winner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    winner_id: Mapped[int] = mapped_column(Integer)
    loser_ids: Mapped[list[int]] = mapped_column(JSON)
    #: The winner's fields the merge changed: ``{field: {"old": ..., "new": ...}}``.
    winner_changes: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    #: The deleted losers' rows, column by column, to re-insert on undo.
    loser_rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    user_id: Mapped[Optional[int]] = mapped_column(Integer)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    undone_on: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class MergeChange(Model):
    """A row a merge changed in some table: a re-pointed foreign key (``repoint``,
    with the old value) or a conflicting row it deleted (``delete``, with the row)."""

    __tablename__ = "trellis_merge_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    merge_id: Mapped[int] = mapped_column(ForeignKey("trellis_merge.id", ondelete="CASCADE"),
                                          index=True)
    action: Mapped[str] = mapped_column(String(8))  # repoint, delete, update
    table_name: Mapped[str] = mapped_column(String(128))
    column_name: Mapped[Optional[str]] = mapped_column(String(128))
    #: The row's primary key values, in key-column order.
    row_key: Mapped[list[Any]] = mapped_column(JSON)
    old_value: Mapped[Optional[Any]] = mapped_column(JSON)
    new_value: Mapped[Optional[Any]] = mapped_column(JSON)
    row_data: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)


class DashboardLayout(Model):
    """A user's own arrangement of the dashboard: which widgets, in which order.

    Without a row the user sees the default dashboard of their roles."""

    __tablename__ = "trellis_dashboard_layout"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         primary_key=True)
    #: Widget names (``<plugin>.<widget>``), in display order.
    widgets: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)


class SavedReport(Model):
    """A report-builder definition saved by a user, private or shared with everyone.

    It always runs under the *viewer's* record rules, so a shared report shows
    each user only the records they may see."""

    __tablename__ = "trellis_report"
    __table_args__ = (Index("ix_trellis_report_owner", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id",
                                                               ondelete="CASCADE"))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The definition: ``{"model", "filters", "group_by", "measures", "chart", ...}``
    #: (see :mod:`trellis.reportbuilder`).
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    owner: Mapped[Optional[User]] = relationship(User, foreign_keys=[owner_id])

    def __repr__(self) -> str:
        return self.name


class SavedView(Model):
    """A list page's filters, sort and page size saved under a name: the owner's own
    or shared with everyone, and pinned to the owner's menu."""

    __tablename__ = "trellis_saved_view"
    __table_args__ = (Index("ix_trellis_saved_view_owner", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The list view's endpoint name (its class, e.g. ``ContactView``).
    view: Mapped[str] = mapped_column(String(100), index=True)
    #: The list's query string, only filter/sort/page-size arguments.
    query: Mapped[str] = mapped_column(String(2000), default="")
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id",
                                                               ondelete="CASCADE"))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return self.name


class ConsentRecord(Model):
    """One entry of the consent ledger: a contact granted or withdrew consent to be
    reached on a channel for a purpose.  Append-only (:mod:`trellis.consent`)."""

    __tablename__ = "trellis_consent"
    __table_args__ = (Index("ix_trellis_consent_contact", "contact_id", "channel", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Kept (``NULL``) when the contact is deleted; ``email_hash`` still identifies them.
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"))
    #: SHA-256 of the lower-cased e-mail address at the time, for suppression after erasure.
    email_hash: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    lawful_basis: Mapped[str] = mapped_column(String(32), default="consent")
    source: Mapped[str] = mapped_column(String(32), default="manual")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[Optional[int]] = mapped_column(Integer)
    note: Mapped[Optional[str]] = mapped_column(String(255))
    evidence: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)

    contact: Mapped[Optional[Contact]] = relationship()

    def __repr__(self) -> str:
        return f"{self.channel}/{self.purpose}: {'granted' if self.granted else 'withdrawn'}"


class ConsentState(Model):
    """The latest consent per contact, channel and purpose (kept by the ledger)."""

    __tablename__ = "trellis_consent_state"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    record_id: Mapped[int] = mapped_column(ForeignKey("trellis_consent.id"))

    record: Mapped[ConsentRecord] = relationship()


class OutboxItem(Model):
    """A job or an event's in-process handlers, written in the same transaction as the
    change that caused it and delivered after the commit (:mod:`trellis.outbox`)."""

    __tablename__ = "trellis_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``job`` (to rq, or run in-process without Redis) or ``event`` (foreground handlers).
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor_id: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Taken by a process until then; a relay takes items whose claim ran out.
    claimed_until: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True),
                                                              index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    #: Set after the last attempt failed: kept for an admin to retry or discard.
    dead_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class UserSecurity(Model):
    """Per-user sign-in state the core keeps beside FAB's user: lock-out after failed
    logins, the TOTP second factor, and the session epoch that logout bumps."""

    __tablename__ = "trellis_user_security"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         primary_key=True)
    locked_until: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: Sessions made before the last logout (or password change) are refused.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    totp_secret: Mapped[Optional[str]] = mapped_column(Encrypted())
    totp_enabled_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    #: The last TOTP time step accepted (a code is never accepted twice).
    totp_last_step: Mapped[Optional[int]] = mapped_column(Integer)


class CustomField(Model):
    """A field an admin added to a registered model (:mod:`trellis.customfields`).

    ``key`` is the stable identifier (the API's ``cf_<key>``), never changed by a
    label rename; the values live in :class:`CustomValue`."""

    __tablename__ = "trellis_custom_field"
    __table_args__ = (UniqueConstraint("model", "key", name="uq_trellis_custom_field_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The model registry name (``contact``, ``deal``...).
    model: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))
    #: text, number, money, date, choice, multi_choice, boolean or link
    type: Mapped[str] = mapped_column(String(16))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    min_value: Mapped[Optional[Decimal]] = mapped_column(Numeric(24, 6))
    max_value: Mapped[Optional[Decimal]] = mapped_column(Numeric(24, 6))
    #: The allowed values of a choice or multi_choice field.
    choices: Mapped[Optional[list]] = mapped_column(JSON)
    #: The registry name of the model a ``link`` field points to.
    target_model: Mapped[Optional[str]] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    def __repr__(self) -> str:
        return self.label


class CustomValue(Model):
    """One value of a custom field for one record (one row per chosen value of a
    multi-choice field), in the typed column of the field's type."""

    __tablename__ = "trellis_custom_value"
    __table_args__ = (
        Index("ix_trellis_custom_value_record", "field_id", "record_id"),
        Index("ix_trellis_custom_value_text", "field_id", "value_text"),
        Index("ix_trellis_custom_value_num", "field_id", "value_num"),
        Index("ix_trellis_custom_value_date", "field_id", "value_date"),
        Index("ix_trellis_custom_value_bool", "field_id", "value_bool"),
        Index("ix_trellis_custom_value_ref", "field_id", "value_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("trellis_custom_field.id",
                                                     ondelete="CASCADE"))
    #: The record's id in the field's model (any registered model: no foreign key).
    record_id: Mapped[int] = mapped_column(Integer)
    value_text: Mapped[Optional[str]] = mapped_column(String(1000))
    value_num: Mapped[Optional[Decimal]] = mapped_column(Numeric(24, 6))
    value_date: Mapped[Optional[date]] = mapped_column(Date)
    value_bool: Mapped[Optional[bool]] = mapped_column(Boolean)
    value_ref: Mapped[Optional[int]] = mapped_column(Integer)
