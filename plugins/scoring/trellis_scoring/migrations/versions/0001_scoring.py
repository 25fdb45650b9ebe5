"""scoring: start of the plugin's migration branch

Revision ID: 0001_scoring
Revises:
Create Date: 2026-11-22
"""

revision = "0001_scoring"
down_revision = None
branch_labels = ("scoring",)
depends_on = "0001_core"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
