"""Imports: the scan stages each chunk's checked rows, keyed by (job, chunk); the duplicate variants index goes.

The scan already parses, checks and normalises every row; it now COPYs a
chunk's valid rows into `import_staging` in the transaction that records the
chunk, and the load merges them from there in SQL, without reading the file
again. The table stays UNLOGGED (a PostgreSQL crash empties it; the load then
reads the file for the chunks it finds missing). Its foreign key to the job
goes: it cost a lookup per staged row, and the rows are deleted with the job's
last step. `ix_product_variants_product_id` is the prefix of
`ix_product_variants_product_id_price`, which serves every lookup it served;
each variant written paid for both.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows staged by the code before this never outlived their transaction: the table is empty.
    op.execute("TRUNCATE import_staging")
    op.drop_constraint("import_staging_job_id_fkey", "import_staging", type_="foreignkey")
    op.drop_index("ix_import_staging_job_id", table_name="import_staging")
    op.add_column("import_staging", sa.Column("chunk", sa.Integer(), nullable=False))
    op.create_index("ix_import_staging_job_id_chunk", "import_staging", ["job_id", "chunk"], unique=False)
    op.drop_index("ix_product_variants_product_id", table_name="product_variants")


def downgrade() -> None:
    op.create_index("ix_product_variants_product_id", "product_variants", ["product_id"], unique=False)
    op.execute("TRUNCATE import_staging")
    op.drop_index("ix_import_staging_job_id_chunk", table_name="import_staging")
    op.drop_column("import_staging", "chunk")
    op.create_index("ix_import_staging_job_id", "import_staging", ["job_id"], unique=False)
    op.create_foreign_key("import_staging_job_id_fkey", "import_staging", "import_jobs", ["job_id"], ["id"],
                          ondelete="CASCADE")
