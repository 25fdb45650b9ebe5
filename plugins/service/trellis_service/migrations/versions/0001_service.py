"""service: start of the plugin's migration branch

Revision ID: 0001_service
Revises:
Create Date: 2026-11-22
"""

revision = "0001_service"
down_revision = None
branch_labels = ("service",)
depends_on = "0001_core"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
