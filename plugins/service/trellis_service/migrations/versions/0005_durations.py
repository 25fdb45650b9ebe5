"""service: a ticket's first-response and resolution time in business hours

Revision ID: 0005_service_durations
Revises: 0004_service_survey
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_service_durations"
down_revision = "0004_service_survey"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("service_ticket", sa.Column("first_response_hours", sa.Float()))
    op.add_column("service_ticket", sa.Column("resolution_hours", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("service_ticket") as batch:
        batch.drop_column("resolution_hours")
        batch.drop_column("first_response_hours")
