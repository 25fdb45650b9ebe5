"""marketing: journeys and per-contact enrolments

Revision ID: 0004_marketing_journeys
Revises: 0003_marketing_campaigns
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_marketing_journeys"
down_revision = "0003_marketing_campaigns"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "marketing_journey",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("trigger_kind", sa.String(10), nullable=False),
        sa.Column("trigger_activity_type", sa.String(64)),
        sa.Column("trigger_payload", sa.JSON()),
        sa.Column("trigger_event", sa.String(64)),
        sa.Column("trigger_segment_id", sa.Integer(), sa.ForeignKey("marketing_segment.id")),
        sa.Column("allow_reentry", sa.Boolean(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("cursor_activity_id", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Numeric(14, 2), nullable=False),
        sa.Column("conversion_days", sa.Integer(), nullable=False),
        sa.Column("created_on", TS, nullable=False),
    )
    op.create_index("ix_marketing_journey_trigger_event", "marketing_journey", ["trigger_event"])
    op.create_table(
        "marketing_journey_enrolment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("journey_id", sa.Integer(),
                  sa.ForeignKey("marketing_journey.id", ondelete="CASCADE"), nullable=False),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), nullable=False),
        sa.Column("entry_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", TS, nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("exit_reason", sa.String(100)),
        sa.Column("context", sa.JSON()),
        sa.UniqueConstraint("journey_id", "contact_id", "entry_no",
                            name="uq_marketing_enrolment_entry"),
    )
    op.create_index("ix_marketing_enrolment_due", "marketing_journey_enrolment",
                    ["journey_id", "status", "step"])
    op.create_index("ix_marketing_enrolment_contact", "marketing_journey_enrolment",
                    ["contact_id"])


def downgrade() -> None:
    op.drop_table("marketing_journey_enrolment")
    op.drop_table("marketing_journey")
