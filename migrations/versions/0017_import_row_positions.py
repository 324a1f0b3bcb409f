"""Imports: which file row last wrote a product's name, description and category, so chunks merge in parallel.

A product's fields come from its last row in the file. Chunks of one file
are merged concurrently and may commit out of file order; each product
records the import job and the row numbers that wrote its fields, and a
chunk's upsert only overwrites a field with a row further down the same
file (or from another job). Nullable columns without a default: adding
them rewrites nothing.

Revision ID: 0017
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = ("import_name_row", "import_description_row", "import_category_row")


def upgrade() -> None:
    op.add_column("products", sa.Column("import_job_id", sa.Uuid(), nullable=True))
    for name in COLUMNS:
        op.add_column("products", sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("products", name)
    op.drop_column("products", "import_job_id")
