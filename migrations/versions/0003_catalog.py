"""Catalog: the weighted search vector and the name vector with GIN indexes, and indexes for listing.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The same document the indexing task writes (integrations/search/postgres.py), for rows that exist now.
BACKFILL = """
UPDATE products p SET name_vector = to_tsvector('english', coalesce(p.name, '')), search_vector =
    setweight(to_tsvector('english', coalesce(p.name, '')), 'A')
    || setweight(to_tsvector('english', coalesce(p.description, '')), 'B')
    || setweight(to_tsvector('english', coalesce(c.path, '') || ' '
       || coalesce((SELECT string_agg(value, ' ') FROM jsonb_each_text(p.attributes)), '')), 'C')
FROM products p2 LEFT JOIN categories c ON c.id = p2.category_id
WHERE p2.id = p.id
"""


def upgrade() -> None:
    op.add_column("products", sa.Column("search_vector", postgresql.TSVECTOR(), nullable=True))
    op.add_column("products", sa.Column("name_vector", postgresql.TSVECTOR(), nullable=True))
    op.execute(BACKFILL)
    op.create_index("ix_products_search_vector", "products", ["search_vector"], unique=False,
                    postgresql_using="gin")
    op.create_index("ix_products_name_vector", "products", ["name_vector"], unique=False,
                    postgresql_using="gin")
    op.create_index("ix_products_created_at_id", "products", ["created_at", "id"], unique=False)
    op.create_index("ix_products_name_id", "products", ["name", "id"], unique=False)
    op.create_index("ix_product_variants_product_id_price", "product_variants", ["product_id", "price"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_product_variants_product_id_price", table_name="product_variants")
    op.drop_index("ix_products_name_id", table_name="products")
    op.drop_index("ix_products_created_at_id", table_name="products")
    op.drop_index("ix_products_name_vector", table_name="products", postgresql_using="gin")
    op.drop_index("ix_products_search_vector", table_name="products", postgresql_using="gin")
    op.drop_column("products", "name_vector")
    op.drop_column("products", "search_vector")
