"""The read-only GraphQL schema: each root field calls the domain action its REST twin calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

import strawberry
from marshmallow import ValidationError
from sqlalchemy.orm import Session
from strawberry.extensions import AddValidationRules, DisableIntrospection, ParserCache, ValidationCache
from strawberry.types import Info

from imports import jobs
from integrations.storage import Storage
from models import cursors
from models.catalog import categories
from models.catalog.listing import Filters, encode_cursor, list_products, search_products
from models.errors import InvalidRequest, NotFound
from models.orders import actions as orders
from models.users import accounts
from models.users.permissions import Actor
from web.auth.guard import check
from web.catalog.schemas import ProductQuerySchema
from web.graphql import types
from web.graphql.limits import limits_rule
from web.graphql.loaders import Loaders

PRODUCT_QUERY = ProductQuerySchema()
ALL_CATEGORIES = 100_000


@dataclass
class Context:
    """What resolvers share during one request."""

    actor: Actor
    session: Session
    storage: Storage
    loaders: Loaders
    search: object


def _page_size(first: int, largest: int = 100) -> int:
    if not 1 <= first <= largest:
        raise InvalidRequest("first is out of range", {"first": [f"Must be between 1 and {largest}."]})
    return first


def _uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidRequest(f"{name} is not an id", {name: ["Not a valid UUID."]}) from None


def _product_args(**given) -> dict:
    """The listing arguments checked by the REST listing's own schema (same rules, same messages)."""
    try:
        return PRODUCT_QUERY.load({key: value for key, value in given.items() if value is not None})
    except ValidationError as exc:
        raise InvalidRequest("invalid arguments", exc.messages) from None


def _tree(rows) -> list[SimpleNamespace]:
    nodes = {row.id: SimpleNamespace(id=row.id, name=row.name, path=row.path, parent_id=row.parent_id,
                                     children=[]) for row in rows}
    roots = []
    for node in nodes.values():  # path order: parents come before their children
        parent = nodes.get(node.parent_id)
        (parent.children if parent else roots).append(node)
    return roots


def _edge_cursor(sort: str | None, product) -> str | None:
    """The keyset cursor after `product` in `sort` order (the listing's own); none for search results."""
    if sort is None:
        return None
    if sort in ("newest", "oldest"):
        value = product.created_at.isoformat()
    elif sort in ("name", "-name"):
        value = product.name
    else:  # the kept lowest variant price, -1 without variants (listing.SORTS)
        value = min((variant.price for variant in product.variants), default=Decimal(-1))
    return encode_cursor(sort, [value, product.id])


@strawberry.type
class Query:
    @strawberry.field(description="Products: full-text `search`, filters, sorting and cursor pages.")
    def products(self, info: Info, first: int = 20, after: str | None = None, search: str | None = None,
                 category: strawberry.ID | None = None, min_price: str | None = None,
                 max_price: str | None = None, in_stock: bool = False,
                 sort: types.ProductSort | None = None) -> types.ProductConnection:
        context: Context = info.context
        check(context.actor, "products:view")
        args = _product_args(q=search, category=category, minPrice=min_price, maxPrice=max_price,
                             inStock=in_stock, sort=sort.value if sort else None, limit=first, cursor=after)
        filters = Filters(args.get("category"), args.get("min_price"), args.get("max_price"), args["in_stock"])
        if args.get("q"):
            page = search_products(context.session, context.search, args["q"], filters, args["limit"],
                                   args.get("cursor"))
        else:
            page = list_products(context.session, filters, args.get("sort") or "newest", args["limit"],
                                 args.get("cursor"))
        sort = None if args.get("q") else args.get("sort") or "newest"
        edges = [types.ProductEdge(node=p, cursor=_edge_cursor(sort, p)) for p in page.products]
        if edges and page.next_cursor:
            edges[-1].cursor = page.next_cursor
        return types.ProductConnection(edges=edges, page_info=types.page_info(page.next_cursor))

    @strawberry.field(description="One product with its variants, images and category.")
    def product(self, info: Info, id: strawberry.ID) -> types.Product:
        context: Context = info.context
        check(context.actor, "products:view")
        found = context.loaders.products.load(_uuid(id, "id"))
        if found is None:
            raise NotFound("product not found")
        return found

    @strawberry.field(description="The category tree: root categories with their children.")
    def categories(self, info: Info) -> list[types.Category]:
        context: Context = info.context
        check(context.actor, "products:view")
        return _tree(categories.list_categories(context.session, ALL_CATEGORIES, None))

    @strawberry.field(description="The signed-in caller's account.")
    def me(self, info: Info) -> types.Me:
        context: Context = info.context
        check(context.actor, "users:view_own")
        return accounts.get_me(context.session, context.actor)

    @strawberry.field(description="Own orders for customers, every order for staff and up; newest first.")
    def orders(self, info: Info, first: int = 20, after: str | None = None) -> types.OrderConnection:
        context: Context = info.context
        check(context.actor, "orders:view_own", "orders:view_all")
        first = _page_size(first)
        after_order = cursors.read_newest_first(after, "orders")
        found = orders.list_orders(context.session, context.actor, first + 1, after_order)
        page = found[:first]
        context.loaders.order_events.expect(order.id for order in page)
        context.loaders.shipments.expect(order.id for order in page)
        cursor = cursors.newest_first("orders", page[-1]) if len(found) > first else None
        return types.OrderConnection(nodes=page, page_info=types.page_info(cursor))

    @strawberry.field(description="One order: own, or any for staff.")
    def order(self, info: Info, id: strawberry.ID) -> types.Order:
        context: Context = info.context
        check(context.actor, "orders:view_own", "orders:view_all")
        return orders.get_order(context.session, context.actor, _uuid(id, "id"))

    @strawberry.field(description="Catalog import jobs, newest first (admin).")
    def import_jobs(self, info: Info, first: int = 20, after: str | None = None) -> types.ImportJobConnection:
        context: Context = info.context
        check(context.actor, "imports:view")
        first = _page_size(first)
        after_job = cursors.read_newest_first(after, "imports")
        found = jobs.list_jobs(context.session, context.actor, first + 1, after_job)
        page = found[:first]
        cursor = cursors.newest_first("imports", page[-1]) if len(found) > first else None
        return types.ImportJobConnection(nodes=page, page_info=types.page_info(cursor))

    @strawberry.field(description="One import job with its counts, progress and first errors (admin).")
    def import_job(self, info: Info, id: strawberry.ID) -> types.ImportJob:
        context: Context = info.context
        check(context.actor, "imports:view")
        return jobs.get_job(context.session, context.actor, _uuid(id, "id"))


def make_schema(max_depth: int, max_cost: int, introspection: bool) -> strawberry.Schema:
    """The schema with its limits; introspection only when asked (development)."""
    rules = [limits_rule(max_depth, max_cost)]
    extensions = [lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256),
                  lambda: AddValidationRules(rules)]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, extensions=extensions)
