"""sales: lead assignment rules

Revision ID: 0003_assignment
Revises: 0002_sales_schema
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_assignment"
down_revision = "0002_sales_schema"
branch_labels = None
depends_on = "0002_record_rules"


def upgrade() -> None:
    op.create_table(
        "sales_assignment_rule",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("value", sa.String(100), nullable=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("trellis_team.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sales_assignment_rule")
