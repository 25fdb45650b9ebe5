"""sales: when a lead was first found at risk / breached (SLA events fire once)

Revision ID: 0007_lead_sla_flags
Revises: 0006_lead_email_lower
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_lead_sla_flags"
down_revision = "0006_lead_email_lower"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sales_lead") as batch:
        batch.add_column(sa.Column("sla_at_risk_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("sla_breached_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("sales_lead") as batch:
        batch.drop_column("sla_breached_at")
        batch.drop_column("sla_at_risk_at")
