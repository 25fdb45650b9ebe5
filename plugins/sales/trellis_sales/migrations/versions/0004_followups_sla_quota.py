"""sales: follow-up reminders and plans, lead response SLA, stale deals, quotas

Revision ID: 0004_followups
Revises: 0003_assignment
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_followups"
down_revision = "0003_assignment"
branch_labels = None
depends_on = "0003_notifications"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sales_lead") as batch:
        batch.add_column(sa.Column("response_due_at", TS))
        batch.add_column(sa.Column("first_contacted_at", TS))
        batch.add_column(sa.Column("sla_escalated_at", TS))
        batch.create_index("ix_sales_lead_response_due_at", ["response_due_at"])
    with op.batch_alter_table("sales_deal") as batch:
        batch.add_column(sa.Column("last_activity_at", TS))
    op.execute("UPDATE sales_deal SET last_activity_at = updated_on")
    with op.batch_alter_table("sales_task") as batch:
        batch.add_column(sa.Column("reminder_sent_at", TS))
        batch.add_column(sa.Column("overdue_sent_at", TS))
        batch.add_column(sa.Column("origin", sa.String(20)))
    op.create_table(
        "sales_followup_plan",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.Text()),
    )
    op.create_table(
        "sales_followup_step",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.Integer(),
                  sa.ForeignKey("sales_followup_plan.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
    )
    op.create_index("ix_sales_followup_step_plan_id", "sales_followup_step", ["plan_id"])
    op.create_table(
        "sales_quota",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.UniqueConstraint("user_id", "period_start", name="uq_sales_quota_period"),
    )


def downgrade() -> None:
    op.drop_table("sales_quota")
    op.drop_index("ix_sales_followup_step_plan_id", "sales_followup_step")
    op.drop_table("sales_followup_step")
    op.drop_table("sales_followup_plan")
    with op.batch_alter_table("sales_task") as batch:
        batch.drop_column("origin")
        batch.drop_column("overdue_sent_at")
        batch.drop_column("reminder_sent_at")
    with op.batch_alter_table("sales_deal") as batch:
        batch.drop_column("last_activity_at")
    with op.batch_alter_table("sales_lead") as batch:
        batch.drop_index("ix_sales_lead_response_due_at")
        batch.drop_column("sla_escalated_at")
        batch.drop_column("first_contacted_at")
        batch.drop_column("response_due_at")
