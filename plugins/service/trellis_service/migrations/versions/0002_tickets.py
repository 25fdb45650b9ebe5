"""service: tickets, their thread, categories, agent availability, SLA policies

Revision ID: 0002_service_tickets
Revises: 0001_service
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_service_tickets"
down_revision = "0001_service"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_category",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("team_id", sa.Integer(),
                  sa.ForeignKey("trellis_team.id", ondelete="SET NULL")),
    )
    op.create_table(
        "service_agent_status",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("away", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "service_sla_policy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("tier", sa.String(50)),
        sa.Column("first_response_hours", sa.Float(), nullable=False),
        sa.Column("resolution_hours", sa.Float(), nullable=False),
        sa.UniqueConstraint("priority", "tier", name="uq_service_sla_policy_priority_tier"),
    )
    op.create_table(
        "service_ticket",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="SET NULL")),
        sa.Column("account_id", sa.Integer(),
                  sa.ForeignKey("trellis_account.id", ondelete="SET NULL")),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("category_id", sa.Integer(),
                  sa.ForeignKey("service_category.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("assignee_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("trellis_team.id", ondelete="SET NULL")),
        sa.Column("tags", sa.String(255)),
        sa.Column("email", sa.String(255)),
        sa.Column("message_id", sa.String(255)),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("first_response_at", TS),
        sa.Column("resolved_at", TS),
        sa.Column("closed_at", TS),
        sa.Column("first_response_due_at", TS),
        sa.Column("resolution_due_at", TS),
        sa.Column("sla_paused_at", TS),
        sa.Column("sla_paused_hours", sa.Float(), nullable=False, server_default="0"),
        sa.Column("sla_at_risk_at", TS),
        sa.Column("sla_breached_at", TS),
        sa.Column("sla_escalated_at", TS),
    )
    op.create_index("ix_service_ticket_contact_id", "service_ticket", ["contact_id"])
    op.create_index("ix_service_ticket_account_id", "service_ticket", ["account_id"])
    op.create_index("ix_service_ticket_assignee_id", "service_ticket", ["assignee_id"])
    op.create_index("ix_service_ticket_status_assignee", "service_ticket",
                    ["status", "assignee_id"])
    op.create_index("ix_service_ticket_resolution_due_at", "service_ticket",
                    ["resolution_due_at"])
    op.create_index("ix_service_ticket_message_id", "service_ticket", ["message_id"])
    op.create_table(
        "service_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(),
                  sa.ForeignKey("service_ticket.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("from_email", sa.String(255)),
        sa.Column("message_id", sa.String(255)),
        sa.Column("in_reply_to", sa.String(255)),
        sa.Column("sent_at", TS),
        sa.Column("created_on", TS, nullable=False),
    )
    op.create_index("ix_service_message_ticket_id", "service_message", ["ticket_id"])
    op.create_index("ix_service_message_message_id", "service_message", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_service_message_message_id", "service_message")
    op.drop_index("ix_service_message_ticket_id", "service_message")
    op.drop_table("service_message")
    for name in ("message_id", "resolution_due_at", "status_assignee", "assignee_id",
                 "account_id", "contact_id"):
        op.drop_index(f"ix_service_ticket_{name}", "service_ticket")
    op.drop_table("service_ticket")
    op.drop_table("service_sla_policy")
    op.drop_table("service_agent_status")
    op.drop_table("service_category")
