"""service: canned responses

Revision ID: 0006_service_canned
Revises: 0005_service_durations
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_service_canned"
down_revision = "0005_service_durations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_canned_response",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("trellis_team.id", ondelete="CASCADE")),
    )


def downgrade() -> None:
    op.drop_table("service_canned_response")
