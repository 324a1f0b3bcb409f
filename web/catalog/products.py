"""/products and their variants: public reads cached in Redis, writes by role."""

from __future__ import annotations

import uuid
from functools import wraps

from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from models.catalog import actions
from models.catalog.cache import CatalogCache, query_key
from models.catalog.listing import Filters
from models.errors import NotFound
from web.auth.guard import current_actor, requires
from web.catalog import services
from web.catalog.cli import register as register_cli
from web.catalog.http import OUTAGE, OUTAGE_SEEN, STALE_HEADER, json_response, reads_shared_pages, unavailable
from web.catalog.render import ListingQuery, render_detail, render_listing
from web.catalog.schemas import (
    ProductPageSchema,
    ProductQuerySchema,
    ProductSchema,
    ProductUpdateSchema,
    VariantListSchema,
    VariantSchema,
    VariantUpdateSchema,
)
from web.extensions import db
from web.limits import read_along, read_along_answer

blp = Blueprint("products", __name__, url_prefix="/api/v1/products", description="Products and variants",
                cli_group="search")
register_cli(blp.cli)
for _outage in OUTAGE:
    blp.register_error_handler(_outage, unavailable)

@blp.url_value_preprocessor
def read_guest_page_along_with_the_rate_limit(endpoint: str, values: dict) -> None:
    """The cached page is read in the rate limiter's Redis round trip (runs before the limiter).

    Read for every GET, signed in or not: who the caller is is known only later (the limiter resolves the
    token); the view checks it before serving the page, and staff's requests never use what was read.
    """
    if request.method != "GET":
        return
    if endpoint == "products.ProductItem":
        read_along(CatalogCache.detail_keys(str(values["product_id"])))
    elif endpoint == "products.Products":
        read_along(CatalogCache.list_keys(query_key(request.args.items(multi=True))))


STALE_DOC = {"headers": {STALE_HEADER: {"description": "true when served from the outage snapshot",
                                        "schema": {"type": "string"}}}}


def with_urls(product):
    """Give each image the URL clients fetch it from."""
    storage = services().storage
    for image in product.images:
        image.url = storage.url(image.storage_key)
    return product


def cached_read(lookup, put, snapshot, render):
    """Serve the shared cache's page; else render from the database; during an outage, from the snapshot.

    Only callers whose answer is a guest's (`models.catalog.cache.reads_public_pages`) read or write the
    shared pages; the others (staff, admins) always render their own and get no snapshot.
    """
    def fresh() -> bytes:
        if (seen := request.environ.pop(OUTAGE_SEEN, None)) is not None:
            raise seen  # the layer in front just failed to reach the database for this request
        return render()

    if not reads_shared_pages():
        read_along_answer()  # read along with the rate limit but not theirs to use
        return json_response(fresh())
    version_seen, body = g.pop("catalog_read", None) or read_along_answer() or lookup()
    if body is not None:
        return json_response(body)
    try:
        body = fresh()
    except OUTAGE:
        if (body := snapshot()) is None:
            raise
        return json_response(body, stale=True)
    put(version_seen, body)
    return json_response(body)


def shared_page_first(view):
    """Serve a hit in the shared cache before the query string is parsed and validated.

    A listing page is written to the cache only after a render that took these exact arguments (the key is
    the query string), so they were valid; a miss goes on to the parser and the view as before.
    """
    @wraps(view)
    def served(*args, **kwargs):
        if reads_shared_pages() and (found := read_along_answer()) is not None:
            if found[1] is not None:
                return json_response(found[1])
            g.catalog_read = found  # the version seen, for the render's write
        return view(*args, **kwargs)

    return served


@blp.route("")
class Products(MethodView):
    @requires("products:view")
    @shared_page_first
    @blp.arguments(ProductQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, ProductPageSchema, **STALE_DOC)
    def get(self, q=None, category=None, min_price=None, max_price=None, in_stock=False, sort=None, limit=20,
            cursor=None):
        """List products: full-text search (`q`), filters, sorting and cursor pagination."""
        query = ListingQuery(q, Filters(category, min_price, max_price, in_stock), sort, limit, cursor)
        cache, key = services().cache, query_key(request.args.items(multi=True))

        def render() -> bytes:
            return render_listing(db().reads, services().search, services().storage.url, query)

        return cached_read(lambda: cache.lookup_list(key), lambda v, body: cache.put_list(key, v, body),
                           lambda: cache.snapshot_list(key), render)

    @requires("products:create")
    @blp.arguments(ProductSchema)
    @blp.response(201, ProductSchema)
    @blp.alt_response(409, description="The handle or a sku is taken")
    def post(self, data):
        """Create a product with its variants (admin)."""
        with db().session() as session:
            product = actions.create_product(session, current_actor(), **data)
        services().cache.invalidate_quietly([str(product.id)])
        return with_urls(product)



@blp.route("/<uuid:product_id>")
class ProductItem(MethodView):
    @requires("products:view")
    @blp.response(200, ProductSchema, **STALE_DOC)
    def get(self, product_id: uuid.UUID):
        """One product with its variants, images and category."""
        cache, pid = services().cache, str(product_id)

        def render() -> bytes:
            # The listing's one prepared query (the same body, tested), not the ORM's four.
            if (body := render_detail(db().reads, services().storage.url, product_id)) is None:
                raise NotFound("product not found")
            return body

        return cached_read(lambda: cache.lookup_detail(pid), lambda v, body: cache.put_detail(pid, v, body),
                           lambda: cache.snapshot_detail(pid), render)

    @requires("products:update")
    @blp.arguments(ProductUpdateSchema)
    @blp.response(200, ProductSchema)
    def patch(self, data, product_id: uuid.UUID):
        """Change a product's name, description, category, handle or attributes (staff)."""
        with db().session() as session:
            product = actions.update_product(session, current_actor(), product_id, **data)
        services().cache.invalidate_quietly([str(product_id)])
        return with_urls(product)

    @requires("products:delete")
    @blp.response(204)
    def delete(self, product_id: uuid.UUID):
        """Delete a product, its variants and images (admin); a worker then deletes the images' files."""
        with db().session() as session:
            actions.delete_product(session, current_actor(), product_id)
        services().cache.invalidate_quietly([str(product_id)], deleted=[str(product_id)])


@blp.route("/<uuid:product_id>/variants")
class Variants(MethodView):
    @requires("products:view")
    @blp.response(200, VariantListSchema)
    def get(self, product_id: uuid.UUID):
        """The product's variants (all of them: one page)."""
        with db().session() as session:
            return {"items": actions.list_variants(session, product_id)}

    @requires("products:create")
    @blp.arguments(VariantSchema)
    @blp.response(201, VariantSchema)
    @blp.alt_response(409, description="The sku is taken")
    def post(self, data, product_id: uuid.UUID):
        """Add a variant (admin)."""
        with db().session() as session:
            variant = actions.add_variant(session, current_actor(), product_id, **data)
        services().cache.invalidate_quietly([str(product_id)])
        return variant


@blp.route("/<uuid:product_id>/variants/<uuid:variant_id>")
class VariantItem(MethodView):
    @requires("products:view")
    @blp.response(200, VariantSchema)
    def get(self, product_id: uuid.UUID, variant_id: uuid.UUID):
        """One variant."""
        with db().session() as session:
            return actions.get_variant(session, product_id, variant_id)

    @requires("products:update")
    @blp.arguments(VariantUpdateSchema)
    @blp.response(200, VariantSchema)
    @blp.alt_response(409, description="The sku is taken, or stock would drop below what is reserved")
    def patch(self, data, product_id: uuid.UUID, variant_id: uuid.UUID):
        """Change a variant's sku, price, currency, stock or attributes (staff)."""
        with db().session() as session:
            variant = actions.update_variant(session, current_actor(), product_id, variant_id, **data)
        services().cache.invalidate_quietly([str(product_id)])
        return variant

    @requires("products:delete")
    @blp.response(204)
    def delete(self, product_id: uuid.UUID, variant_id: uuid.UUID):
        """Remove a variant (admin)."""
        with db().session() as session:
            actions.delete_variant(session, current_actor(), product_id, variant_id)
        services().cache.invalidate_quietly([str(product_id)])
