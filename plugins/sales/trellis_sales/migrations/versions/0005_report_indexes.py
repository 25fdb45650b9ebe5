"""sales: indexes for the reports and the board

* ``ix_sales_deal_stage_updated`` (pipeline_id, stage_id, updated_on, id)
  replaces ``ix_sales_deal_stage`` (pipeline_id, stage_id): same prefix, and a
  board column's 50 most recently updated cards are read from it backwards
  instead of sorting all the column's deals;
* ``ix_sales_deal_owner_won`` (owner_id, won_at) ``WHERE won_at IS NOT NULL``:
  a rep's deals won in a quota period;
* ``ix_sales_lead_converted_deal_id``: a deal's lead (win rate by source).

Revision ID: 0005_report_indexes
Revises: 0004_followups
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_report_indexes"
down_revision = "0004_followups"
branch_labels = None
depends_on = None

WON = sa.text("won_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_sales_deal_stage_updated", "sales_deal",
                    ["pipeline_id", "stage_id", "updated_on", "id"])
    op.drop_index("ix_sales_deal_stage", "sales_deal")
    op.create_index("ix_sales_deal_owner_won", "sales_deal", ["owner_id", "won_at"],
                    postgresql_where=WON, sqlite_where=WON)
    op.create_index("ix_sales_lead_converted_deal_id", "sales_lead", ["converted_deal_id"])


def downgrade() -> None:
    op.drop_index("ix_sales_lead_converted_deal_id", "sales_lead")
    op.drop_index("ix_sales_deal_owner_won", "sales_deal")
    op.create_index("ix_sales_deal_stage", "sales_deal", ["pipeline_id", "stage_id"])
    op.drop_index("ix_sales_deal_stage_updated", "sales_deal")
