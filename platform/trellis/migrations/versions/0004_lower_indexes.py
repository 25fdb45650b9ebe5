"""core: indexes for case-insensitive contact and account lookups

Revision ID: 0004_lower_indexes
Revises: 0003_notifications
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_lower_indexes"
down_revision = "0003_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_trellis_contact_email_lower", "trellis_contact",
                    [sa.text("lower(email)")])
    op.create_index("ix_trellis_contact_name_lower", "trellis_contact",
                    [sa.text("lower(last_name)"), sa.text("lower(first_name)")])
    op.create_index("ix_trellis_account_name_lower", "trellis_account",
                    [sa.text("lower(name)")])
    op.create_index("ix_trellis_account_domain_lower", "trellis_account",
                    [sa.text("lower(domain)")])


def downgrade() -> None:
    op.drop_index("ix_trellis_account_domain_lower", "trellis_account")
    op.drop_index("ix_trellis_account_name_lower", "trellis_account")
    op.drop_index("ix_trellis_contact_name_lower", "trellis_contact")
    op.drop_index("ix_trellis_contact_email_lower", "trellis_contact")
