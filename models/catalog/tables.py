"""Catalog tables: a category tree, products, their variants and images."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (CHAR, BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, Numeric, String, Text,
                        UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from models.db import Base, Timestamps

# Enough for any ISO 4217 currency's minor units (up to 4) and large totals.
Money = Numeric(20, 4)


class Category(Timestamps, Base):
    """A node of the category tree; `path` is the names from the root, joined by ' > '."""

    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("parent_id", "name", postgresql_nulls_not_distinct=True),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(Text, index=True)

    parent: Mapped[Category | None] = relationship(remote_side="Category.id", back_populates="children")
    children: Mapped[list[Category]] = relationship(back_populates="parent")


class Product(Timestamps, Base):
    """A product; `search_vector` is written by the search indexing task (see integrations.search.postgres)."""

    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_products_name_vector", "name_vector", postgresql_using="gin"),
        Index("ix_products_created_at_id", "created_at", "id"),
        Index("ix_products_name_id", "name", "id"),
        # A category's listing in the default order, walked within the category (migration 0021).
        Index("ix_products_category_created_at_id", "category_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    handle: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, server_default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True)
    attributes: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # Weighted: name A, description B, category path and attributes C. Null until indexed.
    search_vector: Mapped[str | None] = deferred(mapped_column(TSVECTOR))
    # The name alone: search ranks products whose name matches before the rest.
    name_vector: Mapped[str | None] = deferred(mapped_column(TSVECTOR))
    # Facts of the variants, kept by models.catalog.indexing.refresh_variant_facts for listing's sort and
    # filters: the lowest price (null without variants) and whether any variant has stock not reserved.
    min_price: Mapped[Decimal | None] = mapped_column(Money)
    in_stock: Mapped[bool] = mapped_column(server_default=text("false"))
    # The import job and the file rows that last wrote the name, description and category (imports.load):
    # chunks of a file merge in parallel, and a row further down the file always wins. No foreign key:
    # the job may be purged, and a stale job id only means "another import", which any new row beats.
    import_job_id: Mapped[uuid.UUID | None] = deferred(mapped_column())
    import_name_row: Mapped[int | None] = deferred(mapped_column(BigInteger))
    import_description_row: Mapped[int | None] = deferred(mapped_column(BigInteger))
    import_category_row: Mapped[int | None] = deferred(mapped_column(BigInteger))

    category: Mapped[Category | None] = relationship()
    variants: Mapped[list[ProductVariant]] = relationship(
        back_populates="product", passive_deletes=True, order_by="ProductVariant.sku")
    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product", passive_deletes=True, order_by="ProductImage.position")


# The price sort's key (variantless products first), with the id that breaks ties.
Index("ix_products_sort_price_id", func.coalesce(Product.min_price, -1), Product.id)
# ... and within one category, so a category's price order starts and stays in it (migration 0021).
Index("ix_products_category_sort_price_id", Product.category_id, func.coalesce(Product.min_price, -1), Product.id)


class ProductVariant(Timestamps, Base):
    """A sellable unit. `reserved` counts units held by unpaid or unshipped orders."""

    __tablename__ = "product_variants"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= stock", name="reserved_within_stock"),
        Index("ix_product_variants_product_id_price", "product_id", "price"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    # (Looked up through ix_product_variants_product_id_price, whose first column it is: migration 0022.)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    price: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(CHAR(3))
    stock: Mapped[int] = mapped_column(server_default=text("0"))
    reserved: Mapped[int] = mapped_column(server_default=text("0"))
    attributes: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    product: Mapped[Product] = relationship(back_populates="variants")


class ProductImage(Timestamps, Base):
    """An image kept in object storage under `storage_key`."""

    __tablename__ = "product_images"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    storage_key: Mapped[str] = mapped_column(String(512))
    source_url: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(64))
    alt_text: Mapped[str] = mapped_column(String(255), server_default="")
    position: Mapped[int] = mapped_column(server_default=text("0"))

    product: Mapped[Product] = relationship(back_populates="images")


class StagedImage(Base):
    """An uploaded image, checked and committed here until a worker has put it in object storage."""

    __tablename__ = "staged_images"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str] = mapped_column(String(64))
    alt_text: Mapped[str] = mapped_column(String(255), server_default="")
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, deferred=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
