"""sales: pipelines, leads, deals, products, orders, tasks

Revision ID: 0002_sales_schema
Revises: 0001_sales
Create Date: 2026-11-22 11:51:19.977166
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_sales_schema'
down_revision = '0001_sales'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sales_pipeline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('sales_product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sku')
    )
    op.create_table('sales_stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('is_won', sa.Boolean(), nullable=False),
    sa.Column('is_lost', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['sales_pipeline.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pipeline_id', 'name')
    )
    op.create_table('sales_deal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('probability_overridden', sa.Boolean(), nullable=False),
    sa.Column('expected_close', sa.Date(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('lost_reason', sa.String(length=200), nullable=True),
    sa.Column('won_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lost_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_on', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_on', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['trellis_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['trellis_contact.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['pipeline_id'], ['sales_pipeline.id'], ),
    sa.ForeignKeyConstraint(['stage_id'], ['sales_stage.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sales_deal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_deal_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_deal_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('ix_sales_deal_owner', ['owner_id'], unique=False)
        batch_op.create_index('ix_sales_deal_stage', ['pipeline_id', 'stage_id'], unique=False)

    op.create_table('sales_deal_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deal_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['deal_id'], ['sales_deal.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['sales_product.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sales_deal_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_deal_line_deal_id'), ['deal_id'], unique=False)

    op.create_table('sales_deal_stage_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deal_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['deal_id'], ['sales_deal.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['stage_id'], ['sales_stage.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sales_deal_stage_history', schema=None) as batch_op:
        batch_op.create_index('ix_sales_history_deal', ['deal_id', 'entered_at'], unique=False)

    op.create_table('sales_lead',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('phone', sa.String(length=50), nullable=True),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('score', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_on', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_on', sa.DateTime(timezone=True), nullable=False),
    sa.Column('converted_contact_id', sa.Integer(), nullable=True),
    sa.Column('converted_deal_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['converted_contact_id'], ['trellis_contact.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['converted_deal_id'], ['sales_deal.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sales_lead', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_lead_email'), ['email'], unique=False)
        batch_op.create_index('ix_sales_lead_owner_status', ['owner_id', 'status'], unique=False)

    op.create_table('sales_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('deal_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('ordered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['trellis_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['trellis_contact.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['deal_id'], ['sales_deal.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sales_order', schema=None) as batch_op:
        batch_op.create_index('ix_sales_order_account_time', ['account_id', 'ordered_at'], unique=False)
        batch_op.create_index('ix_sales_order_contact_time', ['contact_id', 'ordered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_order_owner_id'), ['owner_id'], unique=False)

    op.create_table('sales_order_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['sales_order.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['sales_product.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sales_order_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_order_line_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_order_line_product_id'), ['product_id'], unique=False)

    op.create_table('sales_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('deal_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['trellis_contact.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deal_id'], ['sales_deal.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['sales_lead.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sales_task', schema=None) as batch_op:
        batch_op.create_index('ix_sales_task_owner_due', ['owner_id', 'done_at', 'due_at'], unique=False)

    _default_pipeline()


def _default_pipeline() -> None:
    """A sensible pipeline to start with; admins rename or replace it."""
    pipeline = sa.table("sales_pipeline", sa.column("id", sa.Integer),
                        sa.column("name", sa.String), sa.column("is_default", sa.Boolean))
    stage = sa.table("sales_stage", sa.column("pipeline_id", sa.Integer),
                     sa.column("name", sa.String), sa.column("position", sa.Integer),
                     sa.column("probability", sa.Integer), sa.column("is_won", sa.Boolean),
                     sa.column("is_lost", sa.Boolean))
    op.bulk_insert(pipeline, [{"id": 1, "name": "New business", "is_default": True}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('sales_pipeline_id_seq', 1)")
    op.bulk_insert(stage, [
        {"pipeline_id": 1, "name": name, "position": position, "probability": probability,
         "is_won": name == "Won", "is_lost": name == "Lost"}
        for position, (name, probability) in enumerate([
            ("Qualification", 10), ("Needs analysis", 25), ("Proposal", 50),
            ("Negotiation", 75), ("Won", 100), ("Lost", 0)])
    ])


def downgrade() -> None:
    with op.batch_alter_table('sales_task', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_task_owner_due')

    op.drop_table('sales_task')
    with op.batch_alter_table('sales_order_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_order_line_product_id'))
        batch_op.drop_index(batch_op.f('ix_sales_order_line_order_id'))

    op.drop_table('sales_order_line')
    with op.batch_alter_table('sales_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_order_owner_id'))
        batch_op.drop_index('ix_sales_order_contact_time')
        batch_op.drop_index('ix_sales_order_account_time')

    op.drop_table('sales_order')
    with op.batch_alter_table('sales_lead', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_lead_owner_status')
        batch_op.drop_index(batch_op.f('ix_sales_lead_email'))

    op.drop_table('sales_lead')
    with op.batch_alter_table('sales_deal_stage_history', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_history_deal')

    op.drop_table('sales_deal_stage_history')
    with op.batch_alter_table('sales_deal_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_deal_line_deal_id'))

    op.drop_table('sales_deal_line')
    with op.batch_alter_table('sales_deal', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_deal_stage')
        batch_op.drop_index('ix_sales_deal_owner')
        batch_op.drop_index(batch_op.f('ix_sales_deal_contact_id'))
        batch_op.drop_index(batch_op.f('ix_sales_deal_account_id'))

    op.drop_table('sales_deal')
    op.drop_table('sales_stage')
    op.drop_table('sales_product')
    op.drop_table('sales_pipeline')
