"""Search documents built from the catalog tables, for the indexing task and full reindexes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from integrations.search import ProductDocument, VariantFacts
from models.catalog.tables import Product


def _document(product: Product) -> ProductDocument:
    category = product.category
    return ProductDocument(
        id=str(product.id), name=product.name, description=product.description or "",
        category_id=str(product.category_id) if product.category_id else None,
        category_path=category.path if category else "",
        attributes=" ".join(str(value) for value in (product.attributes or {}).values()),
        variants=[VariantFacts(v.price, v.currency, v.stock - v.reserved) for v in product.variants],
    )


def _query():
    return select(Product).options(selectinload(Product.variants), joinedload(Product.category))


def documents_for(session: Session, product_ids: Iterable[str | uuid.UUID]) -> dict[str, ProductDocument]:
    """Documents of the products that still exist, by id."""
    ids = [uuid.UUID(str(i)) for i in product_ids]
    return {str(p.id): _document(p) for p in session.scalars(_query().where(Product.id.in_(ids)))}


def count_products(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Product))


def all_documents(session: Session, batch: int = 1000) -> Iterator[ProductDocument]:
    """Every product's document, read in id order in batches (keyset, not offset)."""
    last = None
    while True:
        query = _query().order_by(Product.id).limit(batch)
        if last is not None:
            query = query.where(Product.id > last)
        products = session.scalars(query).all()
        if not products:
            return
        yield from (_document(p) for p in products)
        last = products[-1].id
        session.expunge_all()
