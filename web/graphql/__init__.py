"""GraphQL at /graphql: a read-only Strawberry schema over the same domain actions as the REST API."""

from __future__ import annotations

from flask import Flask

from models.catalog.cache import CatalogCache
from settings import Settings
from web.graphql.schema import make_schema
from web.graphql.view import ShopGraphQLView, guest_cache_key
from web.limits import read_along


def register(app: Flask, settings: Settings) -> None:
    """Mount the view; introspection and GraphiQL only in development."""
    development = settings.APP_ENV == "development"
    schema = make_schema(settings.GRAPHQL_MAX_DEPTH, settings.GRAPHQL_MAX_COST, introspection=development)
    if development:
        from web.graphql import ide
        ide.register(app)
    app.add_url_rule("/graphql", view_func=ShopGraphQLView.as_view(
        "graphql", schema=schema, graphql_ide=None, allow_queries_via_get=True))

    @app.url_value_preprocessor
    def read_guest_answer_along_with_the_rate_limit(endpoint: str | None, _values) -> None:
        """The cached answer is read in the rate limiter's Redis round trip (runs before the limiter).

        Read for every caller: who asks is known only later, and the view decides whether the answer it
        read is theirs to use (`web.graphql.view.shared_cache_key`).
        """
        if endpoint == "graphql":
            read_along(CatalogCache.list_keys(guest_cache_key()))
