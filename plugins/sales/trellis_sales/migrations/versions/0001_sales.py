"""sales: start of the plugin's migration branch

Revision ID: 0001_sales
Revises:
Create Date: 2026-11-22
"""

revision = "0001_sales"
down_revision = None
branch_labels = ("sales",)
depends_on = "0001_core"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
