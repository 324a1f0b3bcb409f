"""A category's listing walked in its sort order: (category_id, sort key, id) for the price and newest sorts.

A leaf category holds a fiftieth of the catalog; with the sort indexes over the whole table, a filtered
page walked thousands of other categories' rows in price or date order to find its 21 (17-43 ms at 100,000
products). With the category first the walk starts and stays in the category (1-2 ms).

Revision ID: 0021
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_products_category_sort_price_id", "products",
                    ["category_id", sa.text("coalesce(min_price, -1)"), "id"], unique=False)
    op.create_index("ix_products_category_created_at_id", "products", ["category_id", "created_at", "id"],
                    unique=False)
    # Statistics for the new expression, so the planner sees the index's order at once (a sample: quick).
    op.execute("ANALYZE products")


def downgrade() -> None:
    op.drop_index("ix_products_category_created_at_id", table_name="products")
    op.drop_index("ix_products_category_sort_price_id", table_name="products")
