"""core: notifications, user preferences, exchange rates, business calendars

Revision ID: 0003_notifications
Revises: 0002_record_rules
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_notifications"
down_revision = "0002_record_rules"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trellis_notification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("body", sa.Text()),
        sa.Column("link", sa.String(500)),
        sa.Column("dedupe_key", sa.String(200)),
        sa.Column("read_at", TS),
        sa.Column("emailed_at", TS),
        sa.UniqueConstraint("user_id", "dedupe_key", name="uq_trellis_notification_dedupe"),
    )
    op.create_index("ix_trellis_notification_user_unread", "trellis_notification",
                    ["user_id", "read_at"])
    op.create_table(
        "trellis_user_preference",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("email_notifications", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(10)),
        sa.Column("timezone", sa.String(64)),
    )
    op.create_table(
        "trellis_exchange_rate",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rate", sa.Numeric(18, 8), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.UniqueConstraint("currency", "valid_from", name="uq_trellis_exchange_rate_day"),
    )
    op.create_table(
        "trellis_calendar",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("work_days", sa.String(20), nullable=False),
        sa.Column("day_start", sa.String(5), nullable=False),
        sa.Column("day_end", sa.String(5), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "trellis_holiday",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("calendar_id", sa.Integer(),
                  sa.ForeignKey("trellis_calendar.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.UniqueConstraint("calendar_id", "day", name="uq_trellis_holiday_day"),
    )


def downgrade() -> None:
    op.drop_table("trellis_holiday")
    op.drop_table("trellis_calendar")
    op.drop_table("trellis_exchange_rate")
    op.drop_table("trellis_user_preference")
    op.drop_index("ix_trellis_notification_user_unread", "trellis_notification")
    op.drop_table("trellis_notification")
