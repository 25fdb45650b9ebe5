"""service: ticket attachments

Revision ID: 0007_service_attachments
Revises: 0006_service_canned
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_service_attachments"
down_revision = "0006_service_canned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_attachment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(),
                  sa.ForeignKey("service_ticket.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.Integer(),
                  sa.ForeignKey("service_message.id", ondelete="SET NULL")),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_service_attachment_ticket_id", "service_attachment", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_service_attachment_ticket_id", "service_attachment")
    op.drop_table("service_attachment")
