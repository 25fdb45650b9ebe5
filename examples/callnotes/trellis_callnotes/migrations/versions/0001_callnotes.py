"""callnotes: the call table

Revision ID: 0001_callnotes
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_callnotes"
down_revision = None
branch_labels = ("callnotes",)
depends_on = "0001_core"


def upgrade() -> None:
    op.create_table(
        "callnotes_call",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("long_call", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("ab_user.id"), nullable=True),
    )
    op.create_index("ix_callnotes_call_contact_id", "callnotes_call", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_callnotes_call_contact_id", "callnotes_call")
    op.drop_table("callnotes_call")
