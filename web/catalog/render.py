"""Uncached product pages rendered from PostgreSQL: one function each for the app's views and the layer in front.

PostgreSQL builds each page's products as JSON (models.catalog.listing.PAGE_JSON); Python puts the image
URLs in and writes the bytes. The app's views (after marshmallow parsed the query) and web.catalog.fast
(after `parse_listing` read a plain one) call the same functions, so both write the same bytes.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.engine import Connection, Engine

from integrations.search import SearchBackend
from models.catalog.listing import (
    RELEVANCE,
    SORTS,
    Filters,
    detail_body,
    listing_ids,
    page_body,
    page_items,
    search_items,
)


@dataclass(frozen=True)
class ListingQuery:
    """GET /products' arguments, as ProductQuerySchema loads them."""

    q: str | None = None
    filters: Filters = Filters()
    sort: str | None = None
    limit: int = 20
    cursor: str | None = None


def read_connection(engine: Engine) -> Connection:
    """One pooled connection of `engine`, the database's `reads` (models.db.Database.reads): in autocommit.

    No BEGIN and no ROLLBACK round trips. Each statement reads its own snapshot; a page's ids and rows may
    straddle a write, which at worst leaves out a product deleted in between (page_items skips missing
    ids), as a later read would.
    """
    return engine.connect()


def render_listing(engine: Engine, search: SearchBackend, url, query: ListingQuery) -> bytes:
    """A listing or search page's body; DomainError (an unknown category, a bad cursor) as the view's.

    `engine`: the database's `reads`; `url(storage_key)` gives an image's URL.
    """
    with read_connection(engine) as connection:
        if query.q:
            items, next_cursor = search_items(connection, search, query.q, query.filters, query.limit, query.cursor,
                                              url)
        else:
            ids, next_cursor = listing_ids(connection, query.filters, query.sort or "newest", query.limit,
                                           query.cursor)
            items = page_items(connection, ids, url)
        return page_body(items, next_cursor)


def render_detail(engine: Engine, url, product_id: uuid.UUID) -> bytes | None:
    """A product's detail body; None when there is no such product."""
    with read_connection(engine) as connection:
        found = page_items(connection, [product_id], url)
    return detail_body(found[0]) if found else None


# The plain shapes of each argument: anything else (which the schema may still accept, or refuse with its
# own 422) is left to the app, so its parsing and its error bodies stay the only ones.
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PRICE_TEXT = re.compile(r"[0-9]{1,16}(\.[0-9]{1,4})?")
LIMIT_TEXT = re.compile(r"[1-9][0-9]?|100")
BOOLEANS = {"true": True, "false": False}
ARGUMENTS = frozenset({"q", "category", "minPrice", "maxPrice", "inStock", "sort", "limit", "cursor"})
SORT_NAMES = frozenset({RELEVANCE, *SORTS})


def parse_listing(pairs: list[tuple[str, str]]) -> ListingQuery | None:
    """What ProductQuerySchema loads from these query arguments, when they have its plainest valid form.

    None for anything else: an unknown or repeated argument, a value in another spelling the schema might
    read ("True", "1e2", a UUID in capitals), or one it refuses. The app then parses and answers as always.
    """
    args = dict(pairs)
    if len(args) != len(pairs) or not ARGUMENTS.issuperset(args):
        return None
    q = args.get("q")
    if q is not None and (len(q) > 200 or not q.strip()):
        return None
    category = args.get("category")
    if category is not None and not UUID_TEXT.fullmatch(category):
        return None
    prices = []
    for name in ("minPrice", "maxPrice"):
        text = args.get(name)
        if text is not None and not PRICE_TEXT.fullmatch(text):
            return None
        prices.append(None if text is None else Decimal(text))
    in_stock = BOOLEANS.get(args.get("inStock", "false"))
    sort, limit, cursor = args.get("sort"), args.get("limit", "20"), args.get("cursor")
    if (in_stock is None or (sort is not None and sort not in SORT_NAMES) or not LIMIT_TEXT.fullmatch(limit)
            or (cursor is not None and not 0 < len(cursor) <= 500)):
        return None
    if prices[0] is not None and prices[1] is not None and prices[0] > prices[1]:
        return None
    if (sort == RELEVANCE and not q) or (q and sort not in (None, RELEVANCE)):
        return None
    return ListingQuery(q, Filters(None if category is None else uuid.UUID(category), prices[0], prices[1],
                                   in_stock), sort, int(limit), cursor)
