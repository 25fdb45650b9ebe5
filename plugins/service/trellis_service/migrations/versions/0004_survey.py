"""service: satisfaction surveys of resolved tickets

Revision ID: 0004_service_survey
Revises: 0003_service_kb
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_service_survey"
down_revision = "0003_service_kb"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_survey",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(),
                  sa.ForeignKey("service_ticket.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="SET NULL")),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("trellis_team.id", ondelete="SET NULL")),
        sa.Column("sent_at", TS),
        sa.Column("rating", sa.Integer()),
        sa.Column("nps", sa.Integer()),
        sa.Column("comment", sa.Text()),
        sa.Column("answered_at", TS),
        sa.Column("created_on", TS, nullable=False),
    )
    op.create_index("ix_service_survey_contact_id", "service_survey", ["contact_id"])
    op.create_index("ix_service_survey_agent_id", "service_survey", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_service_survey_agent_id", "service_survey")
    op.drop_index("ix_service_survey_contact_id", "service_survey")
    op.drop_table("service_survey")
