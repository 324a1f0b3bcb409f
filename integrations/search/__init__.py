"""`make_search(settings, engine)`: the search backend SEARCH_BACKEND names."""

from __future__ import annotations

from integrations.search.base import (
    ProductDocument,
    SearchBackend,
    SearchPage,
    SearchQuery,
    VariantFacts,
)

__all__ = ["ProductDocument", "SearchBackend", "SearchPage", "SearchQuery", "VariantFacts", "make_search"]


def make_search(settings, engine) -> SearchBackend:
    """Elasticsearch through its client, or PostgreSQL full-text search on `engine` (the default)."""
    if settings.SEARCH_BACKEND == "elasticsearch":
        from integrations.search.elasticsearch import ElasticsearchSearch, make_client

        client = make_client(settings.ELASTICSEARCH_URL, settings.ELASTICSEARCH_API_KEY, settings.SERVICE_TIMEOUT)
        return ElasticsearchSearch(client, settings.ELASTICSEARCH_INDEX)
    from integrations.search.postgres import PostgresSearch

    return PostgresSearch(engine, settings.SEARCH_TEXT_CONFIG)
