"""API keys: a use count and the highest usage batch applied, so usage counted in Redis is flushed exactly once.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("use_count", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("api_keys", sa.Column("usage_batch", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "usage_batch")
    op.drop_column("api_keys", "use_count")
