"""Elasticsearch through the official client: explicit mappings, bulk writes, alias-swapping reindex.

Searches and writes go through the alias (ELASTICSEARCH_INDEX). A full
reindex builds a new concrete index, fills it with bulk requests, refreshes
it, then moves the alias from the old index to the new in ONE
`_aliases` call, so a search sees either the old index or the complete new
one, never a half-built one. The old index is deleted afterwards.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch, NotFoundError, helpers

from integrations.errors import PermanentError, TransientError
from integrations.search.base import Progress, ProductDocument, SearchBackend, SearchPage, SearchQuery, split_prefix

MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "name": {"type": "text", "analyzer": "english"},
        "description": {"type": "text", "analyzer": "english"},
        "category_id": {"type": "keyword"},
        "category_path": {"type": "text", "analyzer": "english"},
        "attributes": {"type": "text", "analyzer": "english"},
        "variants": {"type": "nested", "properties": {
            "price": {"type": "scaled_float", "scaling_factor": 10000},
            "currency": {"type": "keyword"},
            "available": {"type": "integer"},
        }},
    },
}
SETTINGS = {"number_of_shards": 1, "refresh_interval": "1s"}
# Name above description above category and attributes, as in the PostgreSQL backend.
FIELDS = ["name^4", "description^2", "category_path", "attributes"]
BULK_CHUNK = 500


def make_client(url: str, api_key: str = "", timeout: float = 5.0) -> Elasticsearch:
    return Elasticsearch(url, api_key=api_key or None, request_timeout=timeout, max_retries=2,
                         retry_on_timeout=True)


def to_simple_query(text: str) -> str:
    """Web-search syntax (`"phrase"`, `-word`, `or`) as simple_query_string, the last word a prefix."""
    head, prefix = split_prefix(text.lstrip())
    query = re.sub(r"(?i)(?<=\s)or(?=\s)", "|", f" {head} ").strip()
    if prefix:
        query = f"{query} {prefix}*".strip()
    return query


def _source(document: ProductDocument) -> dict:
    return {"id": document.id, "name": document.name, "description": document.description,
            "category_id": document.category_id, "category_path": document.category_path,
            "attributes": document.attributes,
            "variants": [{"price": float(v.price), "currency": v.currency, "available": v.available}
                         for v in document.variants]}


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, ApiError):
        if exc.status_code in (408, 429) or exc.status_code >= 500:
            return TransientError(f"elasticsearch: {exc.status_code} {exc.message}")
        return PermanentError(f"elasticsearch: {exc.status_code} {exc.message}")
    return TransientError(f"elasticsearch: {exc!r}")


class ElasticsearchSearch(SearchBackend):
    def __init__(self, client: Elasticsearch, alias: str):
        self.client = client
        self.alias = alias
        self._alias_seen = False

    def _call(self, operation):
        try:
            return operation()
        except (ApiError, TransportConnectionError, TransportError, helpers.BulkIndexError) as exc:
            if isinstance(exc, helpers.BulkIndexError):
                raise PermanentError(f"elasticsearch bulk: {exc.errors[:3]}") from exc
            raise _translate(exc) from exc

    def create_index(self, name: str, with_alias: bool) -> None:
        """A concrete index with our mappings (and the alias, for the very first one)."""
        aliases = {self.alias: {}} if with_alias else None
        self._call(lambda: self.client.indices.create(index=name, mappings=MAPPINGS, settings=SETTINGS,
                                                      aliases=aliases))

    def ensure_index(self) -> None:
        """Create the first index behind the alias when there is none (checked once per process)."""
        if self._alias_seen:
            return
        if not self._call(lambda: self.client.indices.exists_alias(name=self.alias)):
            self.create_index(self._new_name(), with_alias=True)
        self._alias_seen = True

    def _new_name(self) -> str:
        return f"{self.alias}-{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 1_000_000:06d}"

    def index(self, documents: list[ProductDocument]) -> None:
        if documents:
            self.ensure_index()
            self._bulk(self.alias, ({"_op_type": "index", "_id": d.id, "_source": _source(d)} for d in documents))

    def delete(self, ids: list[str]) -> None:
        if ids:
            self.ensure_index()
            actions = ({"_op_type": "delete", "_id": i} for i in ids)
            self._call(lambda: helpers.bulk(self.client, actions, index=self.alias, chunk_size=BULK_CHUNK,
                                            raise_on_error=False))

    def _bulk(self, index: str, actions: Iterable[dict], progress: Progress | None = None) -> int:
        done = 0
        def run():
            nonlocal done
            for ok, item in helpers.streaming_bulk(self.client, actions, index=index, chunk_size=BULK_CHUNK):
                if not ok:
                    raise PermanentError(f"elasticsearch bulk item failed: {item}")
                done += 1
                if progress:
                    progress(1)
        self._call(run)
        return done

    def search(self, query: SearchQuery, connection=None) -> SearchPage:
        body = self._body(query)
        try:
            result = self._call(lambda: self.client.search(index=self.alias, **body))
        except PermanentError as exc:
            if "index_not_found" in str(exc) or " 404 " in str(exc):
                return SearchPage([], None)
            raise
        hits = result["hits"]["hits"]
        more = len(hits) > query.limit
        hits = hits[:query.limit]
        return SearchPage([hit["_id"] for hit in hits], hits[-1]["sort"] if more and hits else None)

    def _body(self, query: SearchQuery) -> dict:
        filters = []
        if query.category_ids is not None:
            filters.append({"terms": {"category_id": query.category_ids}})
        variant = []
        price = {k: float(v) for k, v in (("gte", query.min_price), ("lte", query.max_price)) if v is not None}
        if price:
            variant.append({"range": {"variants.price": price}})
        if query.in_stock:
            variant.append({"range": {"variants.available": {"gt": 0}}})
        if variant:
            filters.append({"nested": {"path": "variants", "query": {"bool": {"filter": variant}}}})
        body = {
            "query": {"bool": {
                "must": [{"simple_query_string": {"query": to_simple_query(query.text), "fields": FIELDS,
                                                  "default_operator": "and"}}],
                "filter": filters}},
            "sort": [{"_score": "desc"}, {"id": "asc"}],
            "size": query.limit + 1,
            "source": False,
            "track_total_hits": False,
        }
        if query.after:
            body["search_after"] = query.after
        return body

    def _current_indexes(self) -> list[str]:
        try:
            return sorted(self.client.indices.get_alias(name=self.alias))
        except NotFoundError:
            return []

    def reindex(self, documents: Iterable[ProductDocument], progress: Progress | None = None) -> int:
        new = self._new_name()
        self.create_index(new, with_alias=False)
        actions: Iterator[dict] = ({"_op_type": "index", "_id": d.id, "_source": _source(d)} for d in documents)
        count = self._bulk(new, actions, progress)
        self._call(lambda: self.client.indices.refresh(index=new))
        old = self._call(self._current_indexes)
        swap = [{"remove": {"index": name, "alias": self.alias}} for name in old]
        swap.append({"add": {"index": new, "alias": self.alias}})
        self._call(lambda: self.client.indices.update_aliases(actions=swap))
        for name in old:
            self._call(lambda name=name: self.client.indices.delete(index=name))
        return count
