"""Imports: the chunks a file's scan has checked, so a scan interrupted by a killed worker resumes where it was.

Revision ID: 0011
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_scan_chunks",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_jobs.id"], name=op.f("import_scan_chunks_job_id_fkey"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "chunk", name=op.f("import_scan_chunks_pkey")),
    )


def downgrade() -> None:
    op.drop_table("import_scan_chunks")
