"""Product and variant actions shared by web and tasks; each checks permissions and queues indexing."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from models.catalog.indexing import queue_indexing
from models.catalog.tables import Category, Product, ProductVariant
from models.errors import Conflict, InvalidRequest, NotFound
from models import task_names as names
from models.outbox import enqueue
from models.users.permissions import Actor, authorize

PRODUCT_FIELDS = ("name", "description", "category_id", "attributes", "handle")
DELETE_FILES = names.DELETE_FILES
VARIANT_FIELDS = ("sku", "price", "currency", "stock", "attributes")

# Constraint name → (field, message) for answers that name the field.
CONSTRAINTS = {
    "products_handle_key": ("handle", "already used by another product"),
    "product_variants_sku_key": ("sku", "already used by another variant"),
    "product_variants_reserved_within_stock_check": ("stock", "below the units reserved by orders"),
}


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        for constraint, (field, message) in CONSTRAINTS.items():
            if constraint in str(exc.orig):
                raise Conflict(f"{field}: {message}", {field: [message]}) from None
        raise


def slugify(name: str) -> str:
    """A URL-safe handle stem from a product name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:200] or "product"


def get_product(session: Session, product_id: uuid.UUID, lock: bool = False) -> Product:
    """The product with its variants, images and category loaded."""
    query = select(Product).where(Product.id == product_id).options(
        selectinload(Product.variants), selectinload(Product.images), selectinload(Product.category)
    ).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update(of=Product)
    product = session.scalar(query)
    if product is None:
        raise NotFound("product not found")
    return product


def _check_category(session: Session, category_id: uuid.UUID | None) -> None:
    if category_id is not None and session.get(Category, category_id) is None:
        raise InvalidRequest("category not found", {"categoryId": ["no category with this id"]})


def create_product(session: Session, actor: Actor, name: str, variants: list[dict] = (), **fields) -> Product:
    """A new product, with its first variants."""
    authorize(actor, "products:create")
    _check_category(session, fields.get("category_id"))
    fields.setdefault("handle", f"{slugify(name)}-{uuid.uuid4().hex[:8]}")
    product = Product(name=name, **{k: v for k, v in fields.items() if k in PRODUCT_FIELDS})
    product.variants = [ProductVariant(**variant) for variant in variants]
    session.add(product)
    _flush(session)
    queue_indexing(session, [product.id])
    return get_product(session, product.id)


def update_product(session: Session, actor: Actor, product_id: uuid.UUID, **changes) -> Product:
    """Change a product's own fields (variants and images have their own actions)."""
    authorize(actor, "products:update")
    product = get_product(session, product_id, lock=True)
    if "category_id" in changes:
        _check_category(session, changes["category_id"])
    for field in PRODUCT_FIELDS:
        if field in changes:
            setattr(product, field, changes[field])
    _flush(session)
    queue_indexing(session, [product.id])
    return get_product(session, product.id)


def delete_product(session: Session, actor: Actor, product_id: uuid.UUID) -> None:
    """Delete a product with its variants and images, and queue the deletion of the images' files."""
    authorize(actor, "products:delete")
    product = get_product(session, product_id, lock=True)
    keys = [image.storage_key for image in product.images]
    # In SQL, so the database's ON DELETE CASCADE removes variants and images.
    session.execute(delete(Product).where(Product.id == product_id))
    session.expunge(product)
    queue_indexing(session, [product_id])
    queue_file_deletion(session, keys)


def queue_file_deletion(session: Session, keys: list[str]) -> None:
    """Have a worker delete these storage keys once this transaction commits (retried while storage is away)."""
    if keys:
        enqueue(session, DELETE_FILES, keys=keys)


def get_variant(session: Session, product_id: uuid.UUID, variant_id: uuid.UUID, lock: bool = False) -> ProductVariant:
    query = select(ProductVariant).where(ProductVariant.id == variant_id, ProductVariant.product_id == product_id)
    variant = session.scalar(query.with_for_update() if lock else query)
    if variant is None:
        raise NotFound("variant not found")
    return variant


def list_variants(session: Session, product_id: uuid.UUID) -> list[ProductVariant]:
    return get_product(session, product_id).variants


def add_variant(session: Session, actor: Actor, product_id: uuid.UUID, **fields) -> ProductVariant:
    """A new variant of the product (creating sellable units is a create)."""
    authorize(actor, "products:create")
    get_product(session, product_id)
    variant = ProductVariant(product_id=product_id, **{k: v for k, v in fields.items() if k in VARIANT_FIELDS})
    session.add(variant)
    _flush(session)
    queue_indexing(session, [product_id])
    return variant


def update_variant(session: Session, actor: Actor, product_id: uuid.UUID, variant_id: uuid.UUID,
                   **changes) -> ProductVariant:
    """Change price, stock, sku or attributes; stock may not drop below what orders reserved."""
    authorize(actor, "products:update")
    variant = get_variant(session, product_id, variant_id, lock=True)
    for field in VARIANT_FIELDS:
        if field in changes:
            setattr(variant, field, changes[field])
    _flush(session)
    queue_indexing(session, [product_id])
    return variant


def delete_variant(session: Session, actor: Actor, product_id: uuid.UUID, variant_id: uuid.UUID) -> None:
    """Remove a variant that holds no reservations."""
    authorize(actor, "products:delete")
    variant = get_variant(session, product_id, variant_id, lock=True)
    if variant.reserved:
        raise Conflict("the variant has units reserved by orders", {"reserved": [str(variant.reserved)]})
    session.delete(variant)
    _flush(session)
    queue_indexing(session, [product_id])
