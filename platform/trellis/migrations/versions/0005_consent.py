"""core: the consent ledger and the current consent per contact

Revision ID: 0005_consent
Revises: 0004_lower_indexes
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_consent"
down_revision = "0004_lower_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trellis_consent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="SET NULL"), nullable=True),
        sa.Column("email_hash", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("lawful_basis", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(255), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
    )
    op.create_index("ix_trellis_consent_contact", "trellis_consent",
                    ["contact_id", "channel", "purpose"])
    op.create_index("ix_trellis_consent_email_hash", "trellis_consent", ["email_hash"])
    op.create_table(
        "trellis_consent_state",
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("purpose", sa.String(32), primary_key=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_id", sa.Integer(), sa.ForeignKey("trellis_consent.id"),
                  nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trellis_consent_state")
    op.drop_index("ix_trellis_consent_email_hash", "trellis_consent")
    op.drop_index("ix_trellis_consent_contact", "trellis_consent")
    op.drop_table("trellis_consent")
