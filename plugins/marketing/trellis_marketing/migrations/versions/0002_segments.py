"""marketing: segments and static segment snapshots

Revision ID: 0002_marketing_segments
Revises: 0001_marketing
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_marketing_segments"
down_revision = "0001_marketing"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "marketing_segment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text()),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("member_count", sa.Integer()),
        sa.Column("evaluated_at", TS),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("updated_on", TS, nullable=False),
    )
    op.create_index("ix_marketing_segment_owner_id", "marketing_segment", ["owner_id"])
    op.create_table(
        "marketing_segment_member",
        sa.Column("segment_id", sa.Integer(),
                  sa.ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("added_at", TS, nullable=False),
    )
    op.create_index("ix_marketing_segment_member_contact", "marketing_segment_member",
                    ["contact_id"])


def downgrade() -> None:
    op.drop_table("marketing_segment_member")
    op.drop_table("marketing_segment")
