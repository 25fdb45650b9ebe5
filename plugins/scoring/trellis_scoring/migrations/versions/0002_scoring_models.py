"""scoring: weighted models and terms, customer scores, history and runs; the CRM value model

Revision ID: 0002_scoring_models
Revises: 0001_scoring
Create Date: 2026-12-02
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002_scoring_models"
down_revision = "0001_scoring"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    model = op.create_table(
        "scoring_model",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(50), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_on", TS, nullable=False),
    )
    term = op.create_table(
        "scoring_term",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("scoring_model.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("label", sa.String(100)),
        sa.Column("weight", sa.Float(), nullable=False, server_default="0"),
        sa.Column("method", sa.String(12), nullable=False, server_default="percentile"),
        sa.Column("direction", sa.String(8), nullable=False, server_default="higher"),
        sa.Column("cap_percentile", sa.Float()),
        sa.Column("floor", sa.Float()),
        sa.Column("cap", sa.Float()),
        sa.Column("missing_score", sa.Float(), nullable=False, server_default="0"),
        sa.UniqueConstraint("model_id", "feature", name="uq_scoring_term_feature"),
    )
    op.create_index("ix_scoring_term_model_id", "scoring_term", ["model_id"])
    op.create_table(
        "scoring_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("scoring_model.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("customers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("seconds", sa.Float()),
        sa.Column("terms", sa.JSON(), nullable=False),
    )
    op.create_index("ix_scoring_run_model_started", "scoring_run", ["model_id", "started_at"])
    op.create_table(
        "scoring_customer_score",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("scoring_model.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), nullable=False),
        sa.Column("value", sa.Numeric(6, 2), nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("scoring_run.id", ondelete="SET NULL")),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("explanation", sa.JSON()),
        sa.UniqueConstraint("model_id", "contact_id", name="uq_scoring_score_contact"),
    )
    op.create_index("ix_scoring_score_model_tier_value", "scoring_customer_score",
                    ["model_id", "tier", "value"])
    op.create_index("ix_scoring_score_contact", "scoring_customer_score", ["contact_id"])
    op.create_table(
        "scoring_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("scoring_model.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), nullable=False),
        sa.Column("value", sa.Numeric(6, 2), nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("scoring_run.id", ondelete="SET NULL")),
    )
    op.create_index("ix_scoring_history_contact", "scoring_history",
                    ["contact_id", "model_id", "computed_at"])
    op.create_table(
        "scoring_cursor",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False, server_default="0"),
    )
    # the built-in CRM value model (docs/scoring.md): α·interaction frequency +
    # β·purchase amount + γ·satisfaction + δ·loyalty
    op.bulk_insert(model, [{"id": 1, "key": "crm_value", "name": "CRM value", "active": True,
                            "created_on": datetime(2026, 12, 2, tzinfo=timezone.utc),
                            "description": "Interaction frequency, purchase amount, "
                                           "satisfaction and loyalty, weighted."}])
    common = {"model_id": 1, "floor": None, "cap": None, "cap_percentile": 95.0,
              "direction": "higher", "missing_score": 0.0}
    op.bulk_insert(term, [
        {**common, "position": 1, "feature": "interactions_90d",
         "label": "Interaction frequency", "weight": 0.2, "method": "percentile"},
        {**common, "position": 2, "feature": "purchase_total", "label": "Purchase amount",
         "weight": 0.4, "method": "minmax", "floor": 0.0},
        {**common, "position": 3, "feature": "satisfaction", "label": "Satisfaction",
         "weight": 0.2, "method": "minmax", "floor": 1.0, "cap": 5.0, "missing_score": 50.0},
        {**common, "position": 4, "feature": "loyalty_months", "label": "Loyalty",
         "weight": 0.2, "method": "minmax", "floor": 0.0, "cap": 12.0},
    ])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('scoring_model_id_seq', (SELECT max(id) FROM scoring_model))")


def downgrade() -> None:
    op.drop_table("scoring_cursor")
    op.drop_index("ix_scoring_history_contact", "scoring_history")
    op.drop_table("scoring_history")
    op.drop_index("ix_scoring_score_contact", "scoring_customer_score")
    op.drop_index("ix_scoring_score_model_tier_value", "scoring_customer_score")
    op.drop_table("scoring_customer_score")
    op.drop_index("ix_scoring_run_model_started", "scoring_run")
    op.drop_table("scoring_run")
    op.drop_index("ix_scoring_term_model_id", "scoring_term")
    op.drop_table("scoring_term")
    op.drop_table("scoring_model")
