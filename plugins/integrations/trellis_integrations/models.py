"""The integrations plugin's tables: imports and their journal, duplicate
candidates, webhooks and deliveries, tracking sites and web events, inbound
sources."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Optional

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from trellis.db import Model, utcnow
from trellis.models import Contact

IMPORT_STATUSES = ("draft", "pending", "running", "done", "failed", "reverted")
MATCH_KEYS = ("none", "email", "phone", "domain")
ON_MATCH = ("update", "skip", "create")
IMPORT_MODES = ("skip_bad", "all_or_nothing")
DELIVERY_STATUSES = ("pending", "sending", "retrying", "delivered", "dead")
ENDPOINT_KINDS = ("webhook", "slack", "dingtalk", "wecom", "custom")
INBOUND_TARGETS = ("contact", "lead", "event")


# ------------------------------------------------------------------ import


class ImportMapping(Model):
    """A column mapping saved per source (``"Shopify export"``) and model."""

    __tablename__ = "integrations_import_mapping"
    __table_args__ = (UniqueConstraint("source", "model", name="uq_integrations_mapping"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(64))
    #: ``{"file column": "model field"}``; columns left out are ignored.
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    def __repr__(self) -> str:
        return f"{self.source} → {self.model}"


class ImportRun(Model):
    """One import of a file into a registry model, with its options and outcome."""

    __tablename__ = "integrations_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    source: Mapped[Optional[str]] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255), default="")
    file_format: Mapped[str] = mapped_column(String(8), default="csv")
    #: The uploaded file (kept until the import is finished; workers on other
    #: machines read it from here).
    data: Mapped[Optional[bytes]] = deferred(mapped_column(LargeBinary))
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    match_on: Mapped[str] = mapped_column(String(8), default="email")
    on_match: Mapped[str] = mapped_column(String(8), default="update")
    mode: Mapped[str] = mapped_column(String(16), default="skip_bad")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id",
                                                                    ondelete="SET NULL"))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    reverted_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    created_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[created_by_id])

    def __repr__(self) -> str:
        return f"Import #{self.id} ({self.model}, {self.filename})"


class ImportRowError(Model):
    """What was wrong with one row of an import: one row per field and message."""

    __tablename__ = "integrations_import_error"
    __table_args__ = (Index("ix_integrations_import_error_run", "import_id", "row_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("integrations_import.id",
                                                      ondelete="CASCADE"))
    #: Line number in the file (the header is row 1, the first record row 2).
    row_number: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    raw: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)


class ImportWrite(Model):
    """The journal of an import: what it created (ids per batch) and, per updated
    record, each field's value before and after, so the import can be reverted."""

    __tablename__ = "integrations_import_write"
    __table_args__ = (Index("ix_integrations_import_write_run", "import_id", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("integrations_import.id",
                                                      ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))  # created, updated
    #: ``updated``: the record; ``created``: NULL (the ids are in ``record_ids``).
    record_id: Mapped[Optional[int]] = mapped_column(Integer)
    record_ids: Mapped[Optional[list[int]]] = mapped_column(JSON)
    old: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    new: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)


# ------------------------------------------------------------------ duplicates


class DuplicateCandidate(Model):
    """Two records that may be the same customer, with the reasons and a score.

    No foreign keys: a merge re-points every foreign key to the losers, and
    candidates about merged records are closed by the plugin instead.
    """

    __tablename__ = "integrations_duplicate"
    __table_args__ = (UniqueConstraint("model", "a_id", "b_id", name="uq_integrations_dup"),
                      Index("ix_integrations_dup_status", "model", "status", "score"))

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    a_id: Mapped[int] = mapped_column(Integer)
    b_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open, merged, dismissed
    merge_id: Mapped[Optional[int]] = mapped_column(Integer)
    found_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"{self.model} {self.a_id} ~ {self.b_id} ({self.score:.2f})"


# ------------------------------------------------------------------ webhooks out


class WebhookEndpoint(Model):
    """Where events go: a signed JSON webhook, or a chat bot through a template."""

    __tablename__ = "integrations_webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(1000))
    #: Event names or patterns, comma-separated: ``contact.created, deal.*``.
    events: Mapped[str] = mapped_column(String(1000), default="*")
    #: ``webhook`` (signed JSON), ``slack``/``dingtalk``/``wecom`` (chat bots),
    #: ``custom`` (body from ``template``) or a connector's name.
    kind: Mapped[str] = mapped_column(String(32), default="webhook")
    #: Chat kinds: the message text; ``custom``: the whole body (Jinja, sandboxed).
    template: Mapped[Optional[str]] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[Optional[str]] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[Optional[datetime]] = mapped_column(
        DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return self.name


class WebhookDelivery(Model):
    """One event for one endpoint, until delivered or dead-lettered."""

    __tablename__ = "integrations_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_integrations_delivery_event"),
        Index("ix_integrations_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("integrations_webhook.id",
                                                        ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True),
                                                                default=utcnow)
    last_status_code: Mapped[Optional[int]] = mapped_column(Integer)
    last_error: Mapped[Optional[str]] = mapped_column(String(500))
    created_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    endpoint: Mapped[WebhookEndpoint] = relationship()

    def __repr__(self) -> str:
        return f"{self.event_name} → {self.endpoint}"


class WebhookAttempt(Model):
    """The delivery log: one row per HTTP attempt, with its answer."""

    __tablename__ = "integrations_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("integrations_delivery.id",
                                                        ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[Optional[int]] = mapped_column(Integer)
    error: Mapped[Optional[str]] = mapped_column(String(500))
    duration_ms: Mapped[Optional[int]] = mapped_column(Integer)
    response: Mapped[Optional[str]] = mapped_column(String(1000))

    delivery: Mapped[WebhookDelivery] = relationship()


# ------------------------------------------------------------------ tracking


class TrackingSite(Model):
    """A website or app that sends events: its public key and allowed origins."""

    __tablename__ = "integrations_site"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    site_key: Mapped[str] = mapped_column(String(40), unique=True)
    #: Origins allowed to send events from browsers, one per line or
    #: comma-separated (``https://shop.example.com``).
    allowed_origins: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __repr__(self) -> str:
        return self.name

    def snippet(self) -> Any:
        """The ``<script>`` tag to put on the site's pages (for the show page)."""
        from flask import current_app, request
        from markupsafe import Markup

        base = current_app.config.get("TRELLIS_BASE_URL") or request.host_url.rstrip("/")
        return Markup("<code>{}</code>").format(
            f'<script async src="{base}/integrations/t/{self.site_key}.js"></script>')


class WebVisitor(Model):
    """An anonymous visitor id, and the contact it belongs to once identified."""

    __tablename__ = "integrations_visitor"
    __table_args__ = (UniqueConstraint("site_id", "visitor_id", name="uq_integrations_visitor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("integrations_site.id", ondelete="CASCADE"))
    visitor_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"), index=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    identified_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class WebEvent(Model):
    """A behaviour event from a website or app (page view, add to cart, …).

    Analytics read these rows; once the visitor is known the event is also on
    the contact's timeline (``activity_id``)."""

    __tablename__ = "integrations_web_event"
    __table_args__ = (
        Index("ix_integrations_web_event_visitor", "site_id", "visitor_id"),
        Index("ix_integrations_web_event_time", "occurred_at", "type"),
        Index("ix_integrations_web_event_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[Optional[int]] = mapped_column(ForeignKey("integrations_site.id",
                                                              ondelete="CASCADE"))
    visitor_id: Mapped[Optional[str]] = mapped_column(String(64))
    session_id: Mapped[Optional[str]] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    url: Mapped[Optional[str]] = mapped_column(String(1000))
    path: Mapped[Optional[str]] = mapped_column(String(500))
    title: Mapped[Optional[str]] = mapped_column(String(255))
    referrer: Mapped[Optional[str]] = mapped_column(String(1000))
    product: Mapped[Optional[str]] = mapped_column(String(200))
    value: Mapped[Optional[Decimal]] = mapped_column(Numeric(14, 2))
    currency: Mapped[Optional[str]] = mapped_column(String(3))
    properties: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="SET NULL"))
    activity_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_activity.id", ondelete="SET NULL"))

    contact: Mapped[Optional[Contact]] = relationship()


# ------------------------------------------------------------------ webhooks in


class InboundSource(Model):
    """A generic inbound webhook: ``POST /integrations/hooks/<slug>``, signed with
    ``secret``, its JSON mapped to a contact, a lead or a behaviour event."""

    __tablename__ = "integrations_inbound"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    secret: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(10), default="contact")
    #: ``{"target field": "path.in.the.json"}``, e.g. ``{"email": "customer.email"}``.
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    received_count: Mapped[int] = mapped_column(Integer, default=0)
    last_received_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return self.name


class SourceState(Model):
    """When a source connector (``ConnectorSpec.fetch``) was last pulled."""

    __tablename__ = "integrations_source_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_pulled_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    last_count: Mapped[int] = mapped_column(Integer, default=0)
