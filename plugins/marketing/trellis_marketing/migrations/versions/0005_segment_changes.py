"""marketing: segment membership tracking (entered / left) for journeys and events

Revision ID: 0005_marketing_segment_changes
Revises: 0004_marketing_journeys
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_marketing_segment_changes"
down_revision = "0004_marketing_journeys"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("marketing_segment") as batch:
        batch.add_column(sa.Column("emit_events", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("tracked_since", TS))
    with op.batch_alter_table("marketing_journey") as batch:
        batch.add_column(sa.Column("trigger_segment_change", sa.String(8), nullable=False,
                                   server_default="entered"))
    op.create_table(
        "marketing_segment_presence",
        sa.Column("segment_id", sa.Integer(),
                  sa.ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("since", TS, nullable=False),
    )
    op.create_index("ix_marketing_segment_presence_contact", "marketing_segment_presence",
                    ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_marketing_segment_presence_contact", "marketing_segment_presence")
    op.drop_table("marketing_segment_presence")
    with op.batch_alter_table("marketing_journey") as batch:
        batch.drop_column("trigger_segment_change")
    with op.batch_alter_table("marketing_segment") as batch:
        batch.drop_column("tracked_since")
        batch.drop_column("emit_events")
