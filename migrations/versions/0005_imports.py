"""Imports and exports: jobs, row-level errors, done chunks, file checksums and the COPY staging table.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('export_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('destination', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='queued', nullable=False),
    sa.Column('location', sa.String(length=1000), nullable=True),
    sa.Column('rows', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('message', sa.Text(), server_default='', nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('export_jobs_created_by_fkey'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('export_jobs_pkey'))
    )
    op.create_table('import_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('inbox', sa.String(length=500), nullable=False),
    sa.Column('source_key', sa.String(length=1000), nullable=False),
    sa.Column('source_stamp', sa.String(length=100), server_default='', nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=True),
    sa.Column('policy', sa.String(length=16), server_default='partial', nullable=False),
    sa.Column('status', sa.String(length=20), server_default='queued', nullable=False),
    sa.Column('message', sa.Text(), server_default='', nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('report_to', sa.String(length=255), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('rows_imported', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('rows_failed', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('chunks_total', sa.Integer(), nullable=True),
    sa.Column('error_report_key', sa.String(length=1000), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('import_jobs_created_by_fkey'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('import_jobs_pkey'))
    )
    op.create_index(op.f('ix_import_jobs_checksum'), 'import_jobs', ['checksum'], unique=False)
    op.create_index('ix_import_jobs_inbox_file', 'import_jobs', ['inbox', 'source_key', 'source_stamp'], unique=True)
    op.create_index(op.f('ix_import_jobs_status'), 'import_jobs', ['status'], unique=False)
    op.create_table('import_chunks',
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('chunk', sa.Integer(), nullable=False),
    sa.Column('rows_imported', sa.Integer(), nullable=False),
    sa.Column('rows_failed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('import_chunks_job_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'chunk', name=op.f('import_chunks_pkey'))
    )
    op.create_table('import_errors',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('row_no', sa.BigInteger(), nullable=False),
    sa.Column('column', sa.String(length=64), server_default='', nullable=False),
    sa.Column('value', sa.Text(), server_default='', nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('import_errors_job_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('import_errors_pkey'))
    )
    op.create_index('ix_import_errors_job_id_row_no', 'import_errors', ['job_id', 'row_no'], unique=False)
    op.create_table('import_staging',
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('row_no', sa.BigInteger(), nullable=False),
    sa.Column('sku', sa.Text(), nullable=False),
    sa.Column('product_handle', sa.Text(), nullable=False),
    sa.Column('product_name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('category_path', sa.Text(), nullable=True),
    sa.Column('price', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('currency', sa.Text(), nullable=False),
    sa.Column('stock', sa.BigInteger(), nullable=False),
    sa.Column('image_urls', sa.Text(), nullable=True),
    sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('import_staging_job_id_fkey'), ondelete='CASCADE'),
    prefixes=['UNLOGGED']
    )
    op.create_index('ix_import_staging_job_id', 'import_staging', ['job_id'], unique=False)
    op.create_table('imported_files',
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('imported_files_job_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('checksum', name=op.f('imported_files_pkey'))
    )


def downgrade() -> None:
    op.drop_table('imported_files')
    op.drop_index('ix_import_staging_job_id', table_name='import_staging')
    op.drop_table('import_staging')
    op.drop_index('ix_import_errors_job_id_row_no', table_name='import_errors')
    op.drop_table('import_errors')
    op.drop_table('import_chunks')
    op.drop_index(op.f('ix_import_jobs_status'), table_name='import_jobs')
    op.drop_index('ix_import_jobs_inbox_file', table_name='import_jobs')
    op.drop_index(op.f('ix_import_jobs_checksum'), table_name='import_jobs')
    op.drop_table('import_jobs')
    op.drop_table('export_jobs')
