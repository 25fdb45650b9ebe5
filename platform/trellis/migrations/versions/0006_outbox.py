"""core: the transactional outbox of jobs and events

Revision ID: 0006_outbox
Revises: 0005_consent
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_outbox"
down_revision = "0005_consent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trellis_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_trellis_outbox_claimed_until", "trellis_outbox", ["claimed_until"])


def downgrade() -> None:
    op.drop_index("ix_trellis_outbox_claimed_until", "trellis_outbox")
    op.drop_table("trellis_outbox")
