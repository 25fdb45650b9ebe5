"""sales: index for case-insensitive lead e-mail lookups

Revision ID: 0006_lead_email_lower
Revises: 0005_report_indexes
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_lead_email_lower"
down_revision = "0005_report_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sales_lead_email_lower", "sales_lead", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_sales_lead_email_lower", "sales_lead")
