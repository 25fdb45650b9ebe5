"""core: custom fields and their typed values (issue 8)

Revision ID: 0011_custom_fields
Revises: 0010_saved_views
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_custom_fields"
down_revision = "0010_saved_views"
branch_labels = None
depends_on = None

VALUE_INDEXES = {"record": "record_id", "text": "value_text", "num": "value_num",
                 "date": "value_date", "bool": "value_bool", "ref": "value_ref"}


def upgrade() -> None:
    op.create_table(
        "trellis_custom_field",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("min_value", sa.Numeric(24, 6)),
        sa.Column("max_value", sa.Numeric(24, 6)),
        sa.Column("choices", sa.JSON()),
        sa.Column("target_model", sa.String(64)),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_on", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model", "key", name="uq_trellis_custom_field_key"),
    )
    op.create_index("ix_trellis_custom_field_model", "trellis_custom_field", ["model"])
    op.create_table(
        "trellis_custom_value",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("field_id", sa.Integer(),
                  sa.ForeignKey("trellis_custom_field.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("value_text", sa.String(1000)),
        sa.Column("value_num", sa.Numeric(24, 6)),
        sa.Column("value_date", sa.Date()),
        sa.Column("value_bool", sa.Boolean()),
        sa.Column("value_ref", sa.Integer()),
    )
    for name, column in VALUE_INDEXES.items():
        op.create_index(f"ix_trellis_custom_value_{name}", "trellis_custom_value",
                        ["field_id", column])


def downgrade() -> None:
    for name in VALUE_INDEXES:
        op.drop_index(f"ix_trellis_custom_value_{name}", "trellis_custom_value")
    op.drop_table("trellis_custom_value")
    op.drop_index("ix_trellis_custom_field_model", "trellis_custom_field")
    op.drop_table("trellis_custom_field")
