"""Search indexing coalesced per product: the products whose stock changed since their indexing task was queued.

An order's stock change queues one indexing task for a product only when no
row for it is here; the task deletes the row before it reads the product.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_pending",
        sa.Column("product_id", sa.Uuid(), primary_key=True),
        sa.Column("since", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("search_pending")
