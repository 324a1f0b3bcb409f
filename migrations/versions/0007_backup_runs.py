"""Backup runs: every full, diff, check and drill, with what it saw.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backup_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("backup_label", sa.String(length=64), nullable=True),
        sa.Column("backup_stopped_at", sa.DateTime(), nullable=True),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name="backup_runs_pkey"),
    )
    op.create_index("ix_backup_runs_job_id", "backup_runs", ["job", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_backup_runs_job_id", table_name="backup_runs")
    op.drop_table("backup_runs")
