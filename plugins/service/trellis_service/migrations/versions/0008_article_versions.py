"""service: earlier versions of knowledge-base articles

Revision ID: 0008_service_article_versions
Revises: 0007_service_attachments
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_service_article_versions"
down_revision = "0007_service_attachments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_article_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("article_id", sa.Integer(),
                  sa.ForeignKey("service_article.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("saved_by", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("saved_on", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_service_article_version_article_id", "service_article_version",
                    ["article_id"])


def downgrade() -> None:
    op.drop_index("ix_service_article_version_article_id", "service_article_version")
    op.drop_table("service_article_version")
