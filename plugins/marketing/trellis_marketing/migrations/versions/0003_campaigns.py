"""marketing: e-mail templates, campaigns and messages

Revision ID: 0003_marketing_campaigns
Revises: 0002_marketing_segments
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_marketing_campaigns"
down_revision = "0002_marketing_segments"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "marketing_template",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text()),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("updated_on", TS, nullable=False),
    )
    op.create_table(
        "marketing_campaign",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("segment_id", sa.Integer(), sa.ForeignKey("marketing_segment.id"),
                  nullable=False),
        sa.Column("template_id", sa.Integer(), sa.ForeignKey("marketing_template.id"),
                  nullable=False),
        sa.Column("template_b_id", sa.Integer(), sa.ForeignKey("marketing_template.id")),
        sa.Column("ab_test_percent", sa.Integer(), nullable=False),
        sa.Column("ab_metric", sa.String(10), nullable=False),
        sa.Column("ab_wait_hours", sa.Integer(), nullable=False),
        sa.Column("ab_winner", sa.String(1)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("scheduled_at", TS),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("cost", sa.Numeric(14, 2), nullable=False),
        sa.Column("conversion_days", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("created_on", TS, nullable=False),
    )
    op.create_index("ix_marketing_campaign_segment_id", "marketing_campaign", ["segment_id"])
    op.create_index("ix_marketing_campaign_owner_id", "marketing_campaign", ["owner_id"])
    op.create_table(
        "marketing_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(),
                  sa.ForeignKey("marketing_campaign.id", ondelete="CASCADE")),
        sa.Column("journey_id", sa.Integer()),
        sa.Column("journey_step_key", sa.String(40)),
        sa.Column("template_id", sa.Integer(), sa.ForeignKey("marketing_template.id")),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("variant", sa.String(1)),
        sa.Column("status", sa.String(14), nullable=False),
        sa.Column("claim_token", sa.String(32)),
        sa.Column("claimed_at", TS),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.Column("opened_at", TS),
        sa.Column("clicked_at", TS),
        sa.Column("unsubscribed_at", TS),
        sa.Column("bounced_at", TS),
        sa.Column("error", sa.String(500)),
        sa.Column("smtp_message_id", sa.String(255)),
        sa.UniqueConstraint("campaign_id", "contact_id", name="uq_marketing_message_recipient"),
        sa.UniqueConstraint("journey_step_key", name="uq_marketing_message_journey_step"),
    )
    op.create_index("ix_marketing_message_campaign_status", "marketing_message",
                    ["campaign_id", "status"])
    op.create_index("ix_marketing_message_contact", "marketing_message", ["contact_id"])
    op.create_index("ix_marketing_message_journey_id", "marketing_message", ["journey_id"])


def downgrade() -> None:
    op.drop_table("marketing_message")
    op.drop_table("marketing_campaign")
    op.drop_table("marketing_template")
