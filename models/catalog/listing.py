"""Product listing and search: filters, sorting and cursor pagination that inserts cannot disturb.

Listing pages are keyset pages: the cursor holds the last row's sort value
and id, so rows inserted meanwhile neither repeat nor hide later rows.
Search pages come from the search backend, ranked, with the same filters.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from sqlalchemy import text
from sqlalchemy.orm import Session

from integrations.search import SearchBackend, SearchQuery
from integrations.search.postgres import execute_prepared
from models.catalog.categories import SUBTREE, TREE
from models import cursors
from models.errors import InvalidRequest

# sort name → (its SQL over `products p`, descending, how to read a cursor value back). The price sorts order
# by the lowest variant price kept on the product, variantless ones first: ix_products_sort_price_id.
SORTS = {
    "newest": ("p.created_at", True, datetime.fromisoformat),
    "oldest": ("p.created_at", False, datetime.fromisoformat),
    "name": ("p.name", False, str),
    "-name": ("p.name", True, str),
    "price": ("coalesce(p.min_price, -1)", False, Decimal),
    "-price": ("coalesce(p.min_price, -1)", True, Decimal),
}
RELEVANCE = "relevance"
# The sorts with a (category_id, sort value, id) index: ix_products_category_sort_price_id and
# ix_products_category_created_at_id (migration 0021).
CATEGORY_ORDERED = frozenset({"newest", "oldest", "price", "-price"})
SUBTREE_IN_STATEMENT = 3  # _listing_sql's `categories`: the subtree of :root, read by the statement itself


@dataclass(frozen=True)
class Filters:
    category_id: uuid.UUID | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False


@dataclass(frozen=True)
class Page:
    products: list[SimpleNamespace]
    next_cursor: str | None


def encode_cursor(sort: str, values: list) -> str:
    return cursors.encode(sort, values)


def decode_cursor(cursor: str, sort: str) -> list:
    """The values in `cursor`; refuses one made for another sort order or not made by us."""
    return cursors.decode(cursor, sort)


def _category_ids(connection, filters: Filters) -> list[uuid.UUID] | None:
    if filters.category_id is None:
        return None
    # The subtree starts at the category itself: empty means there is no such category.
    if not (ids := list(_prepared(connection, str(SUBTREE), {"root": str(filters.category_id)}).scalars())):
        raise InvalidRequest("category not found", {"category": ["no category with this id"]})
    return ids


# A page's products with category, variants (by sku) and images (by position): one query, no ORM objects.
PAGE_ROWS = text("""
    SELECT p.id, p.handle, p.name, p.description, p.category_id, p.attributes, p.created_at, p.updated_at,
           c.name AS category_name, c.path AS category_path,
           (SELECT coalesce(json_agg(json_build_object(
                'id', v.id, 'sku', v.sku, 'price', v.price::text, 'currency', v.currency, 'stock', v.stock,
                'reserved', v.reserved, 'attributes', v.attributes) ORDER BY v.sku), '[]')
            FROM product_variants v WHERE v.product_id = p.id) AS variants,
           (SELECT coalesce(json_agg(json_build_object(
                'id', i.id, 'storage_key', i.storage_key, 'content_type', i.content_type, 'alt_text', i.alt_text,
                'position', i.position) ORDER BY i.position), '[]')
            FROM product_images i WHERE i.product_id = p.id) AS images
    FROM products p LEFT JOIN categories c ON c.id = p.category_id
    WHERE p.id = ANY(CAST(:ids AS uuid[]))
""")


def _product_view(row) -> SimpleNamespace:
    """A read-only product with the attributes ProductSchema dumps."""
    category = (SimpleNamespace(id=row.category_id, name=row.category_name, path=row.category_path)
                if row.category_id else None)
    variants = [SimpleNamespace(**{**v, "price": Decimal(v["price"])}) for v in row.variants]
    return SimpleNamespace(id=row.id, handle=row.handle, name=row.name, description=row.description,
                           category_id=row.category_id, category=category, attributes=row.attributes,
                           variants=variants, images=[SimpleNamespace(**i) for i in row.images],
                           created_at=row.created_at, updated_at=row.updated_at)


def _page_rows(session: Session, ids: list[str]):
    return _prepared(session, PAGE_ROWS, {"ids": ids})


def _rfc3339(column: str) -> str:
    """SQL giving what web.schemas.UtcDateTime dumps: UTC, seconds, microseconds only when not zero, `Z`."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"CASE WHEN {column} IS NULL THEN NULL ELSE to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE WHEN mod(extract(microseconds FROM {utc})::int, 1000000) = 0 THEN '' ELSE to_char({utc}, '.US') END "
            f"|| 'Z' END")


# What models.catalog.money.format_price gives: no trailing zeros beyond the first two decimals.
PRICE_TEXT = ("CASE WHEN scale(trim_scale(v.price)) < 2 THEN round(v.price, 2)::text "
              "ELSE trim_scale(v.price)::text END")

# A page of products as the JSON array of their detail bodies (ProductSchema's fields, names, order and
# formats), in the order of the ids given, missing ones left out: PostgreSQL builds the page, Python only
# puts the image URLs in (the storage decides them) and writes the bytes (`page_items`, `page_body`).
# An image's "url" holds its storage key until then. PAGE_JSON_OF reads the page's ids and positions from a
# relation written `{page}` (a search builds its page in its own statement from it); PAGE_JSON from `:ids`.
PAGE_JSON_OF = f"""
    SELECT coalesce(json_agg(json_build_object(
        'id', p.id, 'handle', p.handle, 'name', p.name, 'description', p.description,
        'categoryId', p.category_id,
        'category', CASE WHEN p.category_id IS NULL THEN NULL
                         ELSE json_build_object('id', c.id, 'name', c.name, 'path', c.path) END,
        'attributes', p.attributes,
        'variants', (SELECT coalesce(json_agg(json_build_object(
                'id', v.id, 'sku', v.sku, 'price', {PRICE_TEXT}, 'currency', v.currency, 'stock', v.stock,
                'reserved', v.reserved, 'attributes', v.attributes) ORDER BY v.sku), '[]')
            FROM product_variants v WHERE v.product_id = p.id),
        'images', (SELECT coalesce(json_agg(json_build_object(
                'id', i.id, 'url', i.storage_key, 'contentType', i.content_type, 'altText', i.alt_text,
                'position', i.position) ORDER BY i.position), '[]')
            FROM product_images i WHERE i.product_id = p.id),
        'createdAt', {_rfc3339("p.created_at")}, 'updatedAt', {_rfc3339("p.updated_at")}
    ) ORDER BY page.n), '[]')::text
    FROM {{page}}
    JOIN products p ON p.id = page.id
    LEFT JOIN categories c ON c.id = p.category_id
"""
PAGE_JSON = text(PAGE_JSON_OF.replace("{page}", "unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS page(id, n)"))


def _prepared(connection, statement, params: dict, prepare: bool = True, local: str = ""):
    """`statement` as a server-side prepared statement (planning a page's aggregates cost as much as running
    them), or sent as it is (`prepare=False`), after the `SET LOCAL`s of `local` (execute_prepared); a
    Session runs it on its connection."""
    connection = connection.connection() if isinstance(connection, Session) else connection
    return execute_prepared(connection, statement if isinstance(statement, str) else _text(statement), params,
                            prepare, local)


@lru_cache(maxsize=16)
def _text(statement) -> str:
    return str(statement)  # compiling a text() clause each time cost more than running it prepared


def page_items(connection, ids: list[uuid.UUID], url) -> list[dict]:
    """The detail bodies of the products of `ids`, in that order (missing ones left out).

    `url(storage_key)` gives an image's URL. Equal, key order included, to ProductSchema's dump (tested).
    """
    if not ids:
        return []
    return _with_urls(_prepared(connection, PAGE_JSON, {"ids": [str(i) for i in ids]}).scalar(), url)


def _with_urls(page_json: str, url) -> list[dict]:
    """The items of PostgreSQL's page JSON, each image's storage key replaced by its URL."""
    items = json.loads(page_json)
    for item in items:
        for image in item["images"]:
            image["url"] = url(image["url"])
    return items


def page_body(items: list[dict], next_cursor: str | None) -> bytes:
    """A listing or search page's bytes, as the catalog always wrote them (compact JSON, ASCII)."""
    return json.dumps({"items": items, "nextCursor": next_cursor}, separators=(",", ":")).encode()


def detail_body(item: dict) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode()


def load_page(session: Session, ids: list[uuid.UUID]) -> list[SimpleNamespace]:
    """The products of `ids` in that order (missing ones left out), as ProductSchema reads them."""
    if not ids:
        return []
    found = {row.id: row for row in _page_rows(session, [str(i) for i in ids])}
    return [_product_view(found[i]) for i in ids if i in found]


def list_products(session: Session, filters: Filters, sort: str, limit: int, cursor: str | None) -> Page:
    """One keyset page of products matching `filters` in `sort` order."""
    ids, next_cursor = listing_ids(session, filters, sort, limit, cursor)
    return Page(load_page(session, [uuid.UUID(i) for i in ids]), next_cursor)


# Sent ahead of the keyset statement in its query string (SET LOCAL: for that statement alone). JIT off: a plan
# walking many categories, or expecting a sparse match, is estimated above jit_above_cost, and compiling it
# took PostgreSQL about 100 ms for a page that runs in one. The generic plan, for the walk per category: see
# listing_ids.
JIT_OFF = "SET LOCAL jit = off; "
GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan; "


@lru_cache(maxsize=256)
def _listing_sql(sort: str, categories: int, min_price: bool, max_price: bool, in_stock: bool, after: bool) -> str:
    """The keyset page's statement for this shape of filters.

    One variant must match the price range and, when asked, have stock; the product's kept facts
    (`min_price`, `in_stock`) rule most products out before any variant is read.
    """
    expression, descending, _parse = SORTS[sort]
    where, variant = [], []
    # A category and its subtree (`categories` SUBTREE_IN_STATEMENT) in an order one of the (category_id, sort)
    # indexes keeps: each category's own first rows in that order, then the page from those (a LATERAL per
    # category), the subtree read in the same statement.
    per_category = categories == SUBTREE_IN_STATEMENT
    if per_category and sort not in CATEGORY_ORDERED:
        raise ValueError(f"no (category_id, sort) index for {sort}")
    if categories == 1:  # a leaf: its (category_id, sort) index yields the rows in order (ANY would not)
        where.append("p.category_id = CAST(:category_id AS uuid)")
    elif per_category:
        where.append("p.category_id = category.id")
    elif categories:
        where.append("p.category_id = ANY(CAST(:category_ids AS uuid[]))")
    if min_price:
        variant.append("v.price >= :min_price")
    if max_price:
        where.append("p.min_price <= :max_price")
        variant.append("v.price <= :max_price")
    if in_stock:
        where.append("p.in_stock IS true")
        if variant:
            variant.append("v.stock - v.reserved > 0")
    if variant:
        # EXISTS, written so that the planner does not multiply its own guess of this test by the kept facts'
        # (they are correlated: most products the facts let through have such a variant) and conclude a
        # page holds a dozen rows: it then read and sorted the whole category (bitmap scan, 3-20 ms, and
        # parallel workers) instead of walking the category's sort index until the page is full (0.3-3 ms).
        where.append(f"coalesce((SELECT true FROM product_variants v WHERE v.product_id = p.id AND "
                     f"{' AND '.join(variant)} LIMIT 1), false)")
    if after:
        op = "<" if descending else ">"
        where.append(f"({expression} {op} :value OR ({expression} = :value AND p.id {op} CAST(:last_id AS uuid)))")
    direction = "DESC" if descending else "ASC"
    walk = (" FROM products p" + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {expression} {direction}, p.id {direction} LIMIT :limit")
    # The ids come back as text: nothing reads them as UUIDs (psycopg2 would make one object per row).
    if per_category:
        return (f"{TREE} SELECT first.id::text AS id, first.sort_value FROM tree AS category(id), "
                f"LATERAL (SELECT p.id, {expression} AS sort_value{walk}) AS first "
                f"ORDER BY first.sort_value {direction}, first.id {direction} LIMIT :limit")
    return f"SELECT p.id::text AS id, {expression} AS sort_value{walk}"


def listing_ids(connection, filters: Filters, sort: str, limit: int,
                cursor: str | None) -> tuple[list[str], str | None]:
    """The ids (text) of one keyset page of products matching `filters` in `sort` order, and the next cursor.

    `connection`: a Session or a Connection. The statement's text is written once per shape of filters (no
    SQLAlchemy expression built per request: building and compiling it cost more than PostgreSQL's walk of
    the index). A category's page by price or date walks each category's own (category_id, sort) index,
    whatever the values: that statement is prepared and runs its generic plan (planning it took PostgreSQL
    about a third of the statement's CPU). Every other shape is planned for its values each time (not
    prepared: see `execute_prepared`).
    """
    parse = SORTS[sort][2]
    params: dict = {"limit": limit + 1}
    in_statement = filters.category_id is not None and sort in CATEGORY_ORDERED
    if in_statement:  # the subtree read by the page's own statement: one round trip less
        params["root"] = str(filters.category_id)
        categories = SUBTREE_IN_STATEMENT
    elif (category_ids := _category_ids(connection, filters)) is not None:
        params.update(category_ids=[str(i) for i in category_ids], category_id=str(category_ids[0]))
        categories = min(len(category_ids), 2)
    else:
        categories = 0
    params.update(min_price=filters.min_price, max_price=filters.max_price)
    if cursor:
        try:
            value, last_id = decode_cursor(cursor, sort)
            params.update(value=parse(str(value)), last_id=str(uuid.UUID(str(last_id))))
        except (ValueError, InvalidOperation):
            raise InvalidRequest("the cursor is not valid for this listing", {"cursor": ["not valid"]}) from None
    sql = _listing_sql(sort, categories, filters.min_price is not None, filters.max_price is not None,
                       filters.in_stock, bool(cursor))
    generic = categories == SUBTREE_IN_STATEMENT
    rows = _prepared(connection, sql, params, generic, JIT_OFF + (GENERIC_PLAN if generic else "")).all()
    if in_statement and not rows:
        _category_ids(connection, filters)  # an empty page: 400 if there is no such category
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        sort_value = last.sort_value.isoformat() if isinstance(last.sort_value, datetime) else last.sort_value
        next_cursor = encode_cursor(sort, [sort_value, last.id])
    return [row.id for row in rows[:limit]], next_cursor


def search_products(session: Session, backend: SearchBackend, text: str, filters: Filters, limit: int,
                    cursor: str | None) -> Page:
    """One page of products matching `text` (best first) and `filters`."""
    ids, next_cursor = search_ids(session.connection(), backend, text, filters, limit, cursor)
    return Page(load_page(session, ids), next_cursor)


def search_ids(connection, backend: SearchBackend, text: str, filters: Filters, limit: int,
               cursor: str | None) -> tuple[list[uuid.UUID], str | None]:
    """The ids of one page of products matching `text` (best first) and `filters`, and the next page's cursor."""
    ids, next_cursor, _ = _search(connection, backend, text, filters, limit, cursor, None)
    return [uuid.UUID(i) for i in ids], next_cursor


def search_items(connection, backend: SearchBackend, text: str, filters: Filters, limit: int,
                 cursor: str | None, url) -> tuple[list[dict], str | None]:
    """`page_items` of one page of products matching `text` (best first) and `filters`, and the next cursor.

    A backend that can (PostgreSQL, for a search without filters) builds the page in the search's own
    statement: one round trip instead of two.
    """
    ids, next_cursor, page_json = _search(connection, backend, text, filters, limit, cursor, PAGE_JSON_OF)
    if page_json is not None:
        return _with_urls(page_json, url), next_cursor
    return page_items(connection, [uuid.UUID(i) for i in ids], url), next_cursor


def _search(connection, backend: SearchBackend, text: str, filters: Filters, limit: int, cursor: str | None,
            page_sql: str | None) -> tuple[list[str], str | None, str | None]:
    """The hits' ids (text), the next page's cursor, and the page's JSON when the backend built it."""
    category_ids = _category_ids(connection, filters)
    after = decode_cursor(cursor, RELEVANCE) if cursor else None
    query = SearchQuery(text=text, category_ids=[str(i) for i in category_ids] if category_ids is not None else None,
                        min_price=filters.min_price, max_price=filters.max_price, in_stock=filters.in_stock,
                        limit=limit, after=after)
    try:
        if page_sql is None:
            result, page_json = backend.search(query, connection=connection), None
        else:
            result, page_json = backend.search_page(query, page_sql, connection=connection)
    except (ValueError, TypeError, IndexError):
        if after is None:
            raise
        raise InvalidRequest("the cursor is not valid for this search", {"cursor": ["not valid"]}) from None
    next_cursor = encode_cursor(RELEVANCE, result.next_after) if result.next_after else None
    return result.ids, next_cursor, page_json
