"""Product listing and search: filters, sorting and cursor pagination that inserts cannot disturb.

Listing pages are keyset pages: the cursor holds the last row's sort value
and id, so rows inserted meanwhile neither repeat nor hide later rows.
Search pages come from the search backend, ranked, with the same filters.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import and_, exists, func, literal_column, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from integrations.search import SearchBackend, SearchQuery
from models.catalog.categories import subtree_ids
from models.catalog.tables import Category, Product, ProductVariant
from models.errors import InvalidRequest

# The lowest variant price kept on the product (variantless ones first); matches ix_products_sort_price_id.
MIN_PRICE = func.coalesce(Product.min_price, literal_column("-1"))

# sort name → (expression, descending, how to read a cursor value back)
SORTS = {
    "newest": (Product.created_at, True, datetime.fromisoformat),
    "oldest": (Product.created_at, False, datetime.fromisoformat),
    "name": (Product.name, False, str),
    "-name": (Product.name, True, str),
    "price": (MIN_PRICE, False, Decimal),
    "-price": (MIN_PRICE, True, Decimal),
}
RELEVANCE = "relevance"


@dataclass(frozen=True)
class Filters:
    category_id: uuid.UUID | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False


@dataclass(frozen=True)
class Page:
    products: list[Product]
    next_cursor: str | None


def encode_cursor(sort: str, values: list) -> str:
    plain = [v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v) for v in values]
    raw = json.dumps({"s": sort, "v": plain}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[str]:
    """The values in `cursor`; refuses one made for another sort order or tampered with."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["s"] != sort or not isinstance(data["v"], list) or not 1 <= len(data["v"]) <= 4:
            raise ValueError
        return data["v"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("the cursor is not valid for this listing", {"cursor": ["not valid"]}) from None


def _category_ids(session: Session, filters: Filters) -> list[uuid.UUID] | None:
    if filters.category_id is None:
        return None
    if session.get(Category, filters.category_id) is None:
        raise InvalidRequest("category not found", {"category": ["no category with this id"]})
    return subtree_ids(session, filters.category_id)


def _variant_conditions(filters: Filters) -> list:
    """One variant must match the price range and, when asked, have stock; the product's facts rule most out."""
    product, variant = [], []
    if filters.min_price is not None:
        variant.append(ProductVariant.price >= filters.min_price)
    if filters.max_price is not None:
        product.append(Product.min_price <= filters.max_price)
        variant.append(ProductVariant.price <= filters.max_price)
    if filters.in_stock:
        product.append(Product.in_stock.is_(True))
        if variant:
            variant.append(ProductVariant.stock - ProductVariant.reserved > 0)
    if variant:
        product.append(exists().where(ProductVariant.product_id == Product.id, *variant))
    return product


def _load(session: Session, query):
    # The category joined in: a page costs three queries (products, variants, images).
    return session.scalars(query.options(selectinload(Product.variants), selectinload(Product.images),
                                         joinedload(Product.category))).all()


def list_products(session: Session, filters: Filters, sort: str, limit: int, cursor: str | None) -> Page:
    """One keyset page of products matching `filters` in `sort` order."""
    expression, descending, parse = SORTS[sort]
    query = select(Product)
    if (category_ids := _category_ids(session, filters)) is not None:
        query = query.where(Product.category_id.in_(category_ids))
    query = query.where(*_variant_conditions(filters))
    if cursor:
        try:
            value, last_id = decode_cursor(cursor, sort)
            value, last_id = parse(str(value)), uuid.UUID(str(last_id))
        except (ValueError, InvalidOperation):
            raise InvalidRequest("the cursor is not valid for this listing", {"cursor": ["not valid"]}) from None
        query = query.where(_after(expression, descending, value, last_id))
    order = (expression.desc(), Product.id.desc()) if descending else (expression.asc(), Product.id.asc())
    rows = session.execute(query.add_columns(expression.label("sort_value")).order_by(*order)
                           .limit(limit + 1)).all()
    products = _load(session, select(Product).where(Product.id.in_([row[0].id for row in rows[:limit]])))
    by_id = {p.id: p for p in products}
    page = [by_id[row[0].id] for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        sort_value = last.sort_value.isoformat() if isinstance(last.sort_value, datetime) else last.sort_value
        next_cursor = encode_cursor(sort, [sort_value, last[0].id])
    return Page(page, next_cursor)


def _after(expression, descending: bool, value, last_id: uuid.UUID):
    if descending:
        return or_(expression < value, and_(expression == value, Product.id < last_id))
    return or_(expression > value, and_(expression == value, Product.id > last_id))


def search_products(session: Session, backend: SearchBackend, text: str, filters: Filters, limit: int,
                    cursor: str | None) -> Page:
    """One page of products matching `text` (best first) and `filters`."""
    category_ids = _category_ids(session, filters)
    after = decode_cursor(cursor, RELEVANCE) if cursor else None
    try:
        result = backend.search(SearchQuery(
            text=text, category_ids=[str(i) for i in category_ids] if category_ids is not None else None,
            min_price=filters.min_price, max_price=filters.max_price, in_stock=filters.in_stock,
            limit=limit, after=after))
    except (ValueError, TypeError, IndexError):
        if after is None:
            raise
        raise InvalidRequest("the cursor is not valid for this search", {"cursor": ["not valid"]}) from None
    by_id = {str(p.id): p for p in _load(session, select(Product).where(
        Product.id.in_([uuid.UUID(i) for i in result.ids])))}
    products = [by_id[i] for i in result.ids if i in by_id]
    return Page(products, encode_cursor(RELEVANCE, result.next_after) if result.next_after else None)
