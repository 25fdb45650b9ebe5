"""service: knowledge-base articles with a full-text index

Revision ID: 0003_service_kb
Revises: 0002_service_tickets
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from trellis import fulltext

revision = "0003_service_kb"
down_revision = "0002_service_tickets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_article",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(100)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("views", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("helpful_yes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("helpful_no", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_on", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_service_article_status", "service_article", ["status"])
    fulltext.create(op, "service_article", ["title", "body"])


def downgrade() -> None:
    fulltext.drop(op, "service_article")
    op.drop_index("ix_service_article_status", "service_article")
    op.drop_table("service_article")
