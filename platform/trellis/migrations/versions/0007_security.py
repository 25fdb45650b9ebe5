"""core: an encrypted national id on contacts, and per-user sign-in security

Revision ID: 0007_security
Revises: 0006_outbox
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_security"
down_revision = "0006_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trellis_contact") as batch:
        batch.add_column(sa.Column("national_id", sa.Text(), nullable=True))
    op.create_table(
        "trellis_user_security",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("totp_secret", sa.Text(), nullable=True),
        sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("trellis_user_security")
    with op.batch_alter_table("trellis_contact") as batch:
        batch.drop_column("national_id")
