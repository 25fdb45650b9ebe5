"""scoring: RFM per customer, product associations

Revision ID: 0003_scoring_rfm
Revises: 0002_scoring_models
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_scoring_rfm"
down_revision = "0002_scoring_models"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scoring_rfm",
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("recency_days", sa.Float(), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.Numeric(18, 2), nullable=False),
        sa.Column("r", sa.Integer(), nullable=False),
        sa.Column("f", sa.Integer(), nullable=False),
        sa.Column("m", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(30), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
    )
    op.create_index("ix_scoring_rfm_segment", "scoring_rfm", ["segment"])
    op.create_table(
        "scoring_association",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("antecedent_id", sa.Integer(), nullable=False),
        sa.Column("consequent_id", sa.Integer(), nullable=False),
        sa.Column("antecedent_name", sa.String(200)),
        sa.Column("consequent_name", sa.String(200)),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
    )
    op.create_index("ix_scoring_association_antecedent", "scoring_association",
                    ["antecedent_id", "lift"])


def downgrade() -> None:
    op.drop_index("ix_scoring_association_antecedent", "scoring_association")
    op.drop_table("scoring_association")
    op.drop_index("ix_scoring_rfm_segment", "scoring_rfm")
    op.drop_table("scoring_rfm")
