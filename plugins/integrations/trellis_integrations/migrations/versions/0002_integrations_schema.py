"""integrations: imports and their journal, duplicate candidates, webhooks and
deliveries, tracking sites, visitors and web events, inbound sources

Revision ID: 0002_integrations_schema
Revises: 0001_integrations
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_integrations_schema"
down_revision = "0001_integrations"
branch_labels = None
depends_on = "0008_merge"


def upgrade() -> None:
    op.create_table('integrations_duplicate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('a_id', sa.Integer(), nullable=False),
    sa.Column('b_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('merge_id', sa.Integer(), nullable=True),
    sa.Column('found_on', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model', 'a_id', 'b_id', name='uq_integrations_dup')
    )
    op.create_index('ix_integrations_dup_status', 'integrations_duplicate', ['model', 'status', 'score'], unique=False)
    op.create_table('integrations_import_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('updated_on', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'model', name='uq_integrations_mapping')
    )
    op.create_table('integrations_inbound',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('target', sa.String(length=10), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('received_count', sa.Integer(), nullable=False),
    sa.Column('last_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_table('integrations_site',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('site_key', sa.String(length=40), nullable=False),
    sa.Column('allowed_origins', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_key')
    )
    op.create_table('integrations_source_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('last_pulled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('integrations_webhook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('events', sa.String(length=1000), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('template', sa.Text(), nullable=True),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('previous_secret', sa.String(length=100), nullable=True),
    sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_on', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('integrations_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_name', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_on', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['integrations_webhook.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_id', 'event_id', name='uq_integrations_delivery_event')
    )
    op.create_index('ix_integrations_delivery_due', 'integrations_delivery', ['status', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_integrations_delivery_endpoint_id'), 'integrations_delivery', ['endpoint_id'], unique=False)
    op.create_table('integrations_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('file_format', sa.String(length=8), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('match_on', sa.String(length=8), nullable=False),
    sa.Column('on_match', sa.String(length=8), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('processed_rows', sa.Integer(), nullable=False),
    sa.Column('created_count', sa.Integer(), nullable=False),
    sa.Column('updated_count', sa.Integer(), nullable=False),
    sa.Column('unchanged_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_on', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reverted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('integrations_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('response', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['integrations_delivery.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_integrations_attempt_delivery_id'), 'integrations_attempt', ['delivery_id'], unique=False)
    op.create_table('integrations_import_error',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=100), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('raw', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['integrations_import.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_integrations_import_error_run', 'integrations_import_error', ['import_id', 'row_number'], unique=False)
    op.create_table('integrations_import_write',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('record_ids', sa.JSON(), nullable=True),
    sa.Column('old', sa.JSON(), nullable=True),
    sa.Column('new', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['integrations_import.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_integrations_import_write_run', 'integrations_import_write', ['import_id', 'action'], unique=False)
    op.create_table('integrations_visitor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('identified_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['trellis_contact.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['integrations_site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id', 'visitor_id', name='uq_integrations_visitor')
    )
    op.create_index(op.f('ix_integrations_visitor_contact_id'), 'integrations_visitor', ['contact_id'], unique=False)
    op.create_table('integrations_web_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('visitor_id', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=True),
    sa.Column('path', sa.String(length=500), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('referrer', sa.String(length=1000), nullable=True),
    sa.Column('product', sa.String(length=200), nullable=True),
    sa.Column('value', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('properties', sa.JSON(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('activity_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['activity_id'], ['trellis_activity.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['trellis_contact.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['integrations_site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_integrations_web_event_contact', 'integrations_web_event', ['contact_id'], unique=False)
    op.create_index('ix_integrations_web_event_time', 'integrations_web_event', ['occurred_at', 'type'], unique=False)
    op.create_index('ix_integrations_web_event_visitor', 'integrations_web_event', ['site_id', 'visitor_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_integrations_web_event_visitor', table_name='integrations_web_event')
    op.drop_index('ix_integrations_web_event_time', table_name='integrations_web_event')
    op.drop_index('ix_integrations_web_event_contact', table_name='integrations_web_event')
    op.drop_table('integrations_web_event')
    op.drop_index(op.f('ix_integrations_visitor_contact_id'), table_name='integrations_visitor')
    op.drop_table('integrations_visitor')
    op.drop_index('ix_integrations_import_write_run', table_name='integrations_import_write')
    op.drop_table('integrations_import_write')
    op.drop_index('ix_integrations_import_error_run', table_name='integrations_import_error')
    op.drop_table('integrations_import_error')
    op.drop_index(op.f('ix_integrations_attempt_delivery_id'), table_name='integrations_attempt')
    op.drop_table('integrations_attempt')
    op.drop_table('integrations_import')
    op.drop_index(op.f('ix_integrations_delivery_endpoint_id'), table_name='integrations_delivery')
    op.drop_index('ix_integrations_delivery_due', table_name='integrations_delivery')
    op.drop_table('integrations_delivery')
    op.drop_table('integrations_webhook')
    op.drop_table('integrations_source_state')
    op.drop_table('integrations_site')
    op.drop_table('integrations_inbound')
    op.drop_table('integrations_import_mapping')
    op.drop_index('ix_integrations_dup_status', table_name='integrations_duplicate')
    op.drop_table('integrations_duplicate')
