"""GraphQL at /graphql: a read-only Strawberry schema over the same domain actions as the REST API."""

from __future__ import annotations

from flask import Flask

from settings import Settings
from web.graphql.schema import make_schema
from web.graphql.view import ShopGraphQLView


def register(app: Flask, settings: Settings) -> None:
    """Mount the view; introspection and GraphiQL only in development."""
    development = settings.APP_ENV == "development"
    schema = make_schema(settings.GRAPHQL_MAX_DEPTH, settings.GRAPHQL_MAX_COST, introspection=development)
    if development:
        from web.graphql import ide
        ide.register(app)
    app.add_url_rule("/graphql", view_func=ShopGraphQLView.as_view(
        "graphql", schema=schema, graphql_ide=None, allow_queries_via_get=True))
