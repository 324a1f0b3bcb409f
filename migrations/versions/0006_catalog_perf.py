"""Catalog listing: each product's lowest variant price and in-stock flag, kept for sorting and filtering.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# What models.catalog.indexing.refresh_variant_facts writes, for the rows that exist now.
BACKFILL = """
UPDATE products p SET min_price = v.min_price, in_stock = v.in_stock
FROM (SELECT product_id, min(price) AS min_price, bool_or(stock > reserved) AS in_stock
      FROM product_variants GROUP BY product_id) v
WHERE v.product_id = p.id
"""


def upgrade() -> None:
    op.add_column("products", sa.Column("min_price", sa.Numeric(precision=20, scale=4), nullable=True))
    op.add_column("products", sa.Column("in_stock", sa.Boolean(), server_default=sa.text("false"),
                                        nullable=False))
    op.execute(BACKFILL)
    op.create_index("ix_products_sort_price_id", "products", [sa.text("coalesce(min_price, -1)"), "id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_products_sort_price_id", table_name="products")
    op.drop_column("products", "in_stock")
    op.drop_column("products", "min_price")
