"""core: the merge journal (trellis.merge), so merges can be undone

Revision ID: 0008_merge
Revises: 0007_security
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_merge"
down_revision = "0007_security"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trellis_merge",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("winner_id", sa.Integer(), nullable=False),
        sa.Column("loser_ids", sa.JSON(), nullable=False),
        sa.Column("winner_changes", sa.JSON()),
        sa.Column("loser_rows", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.Integer()),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("undone_on", TS),
    )
    op.create_index("ix_trellis_merge_winner", "trellis_merge", ["model", "winner_id"])
    op.create_table(
        "trellis_merge_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("merge_id", sa.Integer(),
                  sa.ForeignKey("trellis_merge.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("table_name", sa.String(128), nullable=False),
        sa.Column("column_name", sa.String(128)),
        sa.Column("row_key", sa.JSON(), nullable=False),
        sa.Column("old_value", sa.JSON()),
        sa.Column("new_value", sa.JSON()),
        sa.Column("row_data", sa.JSON()),
    )
    op.create_index("ix_trellis_merge_change_merge_id", "trellis_merge_change", ["merge_id"])


def downgrade() -> None:
    op.drop_index("ix_trellis_merge_change_merge_id", "trellis_merge_change")
    op.drop_table("trellis_merge_change")
    op.drop_index("ix_trellis_merge_winner", "trellis_merge")
    op.drop_table("trellis_merge")
