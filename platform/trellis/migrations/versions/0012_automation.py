"""core: automation rules, their versions, runs and date firings (issue 8)

Revision ID: 0012_automation
Revises: 0011_custom_fields
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_automation"
# TODO(lead): rebase onto "0011_custom_fields" when merging.
down_revision = "0011_custom_fields"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trellis_automation_rule",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("trigger_kind", sa.String(20), nullable=False),
        sa.Column("trigger_event", sa.String(100)),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("conditions", sa.JSON()),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("next_run_at", TS),
        sa.Column("active_since", TS),
        sa.Column("created_on", TS, nullable=False),
        sa.Column("updated_on", TS, nullable=False),
    )
    op.create_index("ix_trellis_automation_rule_trigger", "trellis_automation_rule",
                    ["trigger_kind", "trigger_event", "enabled"])
    op.create_table(
        "trellis_automation_rule_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule_id", sa.Integer(),
                  sa.ForeignKey("trellis_automation_rule.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(100)),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="SET NULL")),
        sa.Column("created_on", TS, nullable=False),
        sa.UniqueConstraint("rule_id", "version", name="uq_trellis_automation_rule_version"),
    )
    op.create_table(
        "trellis_automation_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule_id", sa.Integer(),
                  sa.ForeignKey("trellis_automation_rule.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(32)),
        sa.Column("record_ids", sa.JSON(), nullable=False),
        sa.Column("matched_ids", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_trellis_automation_run_rule", "trellis_automation_run",
                    ["rule_id", "id"])
    op.create_table(
        "trellis_automation_fired",
        sa.Column("rule_id", sa.Integer(),
                  sa.ForeignKey("trellis_automation_rule.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("record_id", sa.Integer(), primary_key=True),
        sa.Column("fired_for", sa.String(40), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("trellis_automation_fired")
    op.drop_index("ix_trellis_automation_run_rule", "trellis_automation_run")
    op.drop_table("trellis_automation_run")
    op.drop_table("trellis_automation_rule_version")
    op.drop_index("ix_trellis_automation_rule_trigger", "trellis_automation_rule")
    op.drop_table("trellis_automation_rule")
