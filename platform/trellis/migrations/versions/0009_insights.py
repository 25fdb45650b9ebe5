"""core: dashboard layouts per user and saved reports (issue 9, insights)

Revision ID: 0009_insights
Revises: 0008_merge
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_insights"
down_revision = "0008_merge"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trellis_dashboard_layout",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("widgets", sa.JSON(), nullable=False),
        sa.Column("updated_on", TS, nullable=False),
    )
    op.create_table(
        "trellis_report",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE")),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("updated_on", TS, nullable=False),
    )
    op.create_index("ix_trellis_report_owner", "trellis_report", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_trellis_report_owner", "trellis_report")
    op.drop_table("trellis_report")
    op.drop_table("trellis_dashboard_layout")
