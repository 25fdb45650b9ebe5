"""core: teams and record-rule scopes per role

Revision ID: 0002_record_rules
Revises: 0001_core
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_record_rules"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trellis_team",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("manager_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="SET NULL")),
    )
    op.create_table(
        "trellis_team_member",
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("trellis_team.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_index("ix_trellis_team_member_user", "trellis_team_member", ["user_id"])
    op.create_table(
        "trellis_role_scope",
        sa.Column("role_id", sa.Integer(), sa.ForeignKey("ab_role.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("scope", sa.String(8), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trellis_role_scope")
    op.drop_index("ix_trellis_team_member_user", "trellis_team_member")
    op.drop_table("trellis_team_member")
    op.drop_table("trellis_team")
