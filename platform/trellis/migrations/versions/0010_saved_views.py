"""core: saved list views (issue 8)

Revision ID: 0010_saved_views
Revises: 0009_insights
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_saved_views"
down_revision = "0009_insights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trellis_saved_view",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("view", sa.String(100), nullable=False),
        sa.Column("query", sa.String(2000), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE")),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_trellis_saved_view_owner", "trellis_saved_view", ["owner_id"])
    op.create_index("ix_trellis_saved_view_view", "trellis_saved_view", ["view"])


def downgrade() -> None:
    op.drop_index("ix_trellis_saved_view_view", "trellis_saved_view")
    op.drop_index("ix_trellis_saved_view_owner", "trellis_saved_view")
    op.drop_table("trellis_saved_view")
