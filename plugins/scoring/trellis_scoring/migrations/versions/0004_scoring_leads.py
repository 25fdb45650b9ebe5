"""scoring: lead scoring (rules, behaviour signals, scores), churn risk and lifetime value

Revision ID: 0004_scoring_leads
Revises: 0003_scoring_rfm
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_scoring_leads"
down_revision = "0003_scoring_rfm"
branch_labels = None
depends_on = "0007_lead_sla_flags"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    rule = op.create_table(
        "scoring_lead_rule",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("value", sa.String(200)),
        sa.Column("points", sa.Float(), nullable=False),
    )
    op.create_table(
        "scoring_lead_signal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("sales_lead.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
    )
    op.create_index("ix_scoring_lead_signal_lead_id", "scoring_lead_signal", ["lead_id"])
    op.create_table(
        "scoring_lead_score",
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("sales_lead.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("profile_points", sa.Float(), nullable=False),
        sa.Column("behaviour_points", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("qualified_at", TS),
    )
    op.create_table(
        "scoring_churn_model",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("trained_at", TS, nullable=False),
        sa.Column("features", sa.JSON()),
        sa.Column("coefficients", sa.JSON()),
        sa.Column("auc", sa.Float()),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_test", sa.Integer(), nullable=False),
        sa.Column("churn_rate", sa.Float()),
    )
    op.create_table(
        "scoring_customer_value",
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("churn_probability", sa.Float()),
        sa.Column("annual_value", sa.Float()),
        sa.Column("clv", sa.Float()),
        sa.Column("computed_at", TS, nullable=False),
    )
    op.bulk_insert(rule, [
        {"kind": "profile", "field": "industry", "value": "software", "points": 15},
        {"kind": "profile", "field": "title", "value": "*head*", "points": 10},
        {"kind": "profile", "field": "title", "value": "*chief*", "points": 15},
        {"kind": "behaviour", "field": "email.opened", "value": None, "points": 2},
        {"kind": "behaviour", "field": "web.page_view", "value": None, "points": 1},
        {"kind": "behaviour", "field": "form.submitted", "value": None, "points": 15},
        {"kind": "behaviour", "field": "demo.requested", "value": None, "points": 40},
    ])


def downgrade() -> None:
    op.drop_table("scoring_customer_value")
    op.drop_table("scoring_churn_model")
    op.drop_table("scoring_lead_score")
    op.drop_index("ix_scoring_lead_signal_lead_id", "scoring_lead_signal")
    op.drop_table("scoring_lead_signal")
    op.drop_table("scoring_lead_rule")
