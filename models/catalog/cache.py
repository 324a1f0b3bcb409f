"""Cached catalog pages in Redis, and the snapshot that serves them while PostgreSQL is away.

Detail pages are keyed by the product's version and listing pages by a
catalog-wide generation; `invalidate` bumps both, so a page rendered from
data read before the change is written under a key nobody reads any more.
Snapshots are the last page rendered for each key, kept much longer and
never invalidated (only deleted products' are dropped): they are what the
catalog answers with, marked stale, during a database outage.

Redis being away never fails a request: reads miss and writes are skipped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

import redis

log = logging.getLogger(__name__)

PREFIX = "catalog:"
GENERATION = PREFIX + "gen"


def query_key(pairs: Iterable[tuple[str, str]]) -> str:
    """A stable key for a query string, whatever the order of its parameters."""
    return hashlib.sha256("&".join(f"{k}={v}" for k, v in sorted(pairs)).encode()).hexdigest()


class CatalogCache:
    def __init__(self, client: redis.Redis, ttl: int, snapshot_ttl: int):
        self.redis = client
        self.ttl = ttl
        self.snapshot_ttl = snapshot_ttl

    def _safely(self, operation, default=None):
        try:
            return operation()
        except redis.RedisError as exc:
            log.warning("catalog cache unavailable", extra={"error": repr(exc)})
            return default

    # A version read before the database and used to write after it.
    def detail_version(self, product_id: str) -> str:
        return self._safely(lambda: (self.redis.get(f"{PREFIX}v:{product_id}") or b"0").decode(), "0")

    def list_version(self) -> str:
        return self._safely(lambda: (self.redis.get(GENERATION) or b"0").decode(), "0")

    def get_detail(self, product_id: str, version: str) -> bytes | None:
        return self._safely(lambda: self.redis.get(f"{PREFIX}detail:{product_id}:{version}"))

    def get_list(self, key: str, version: str) -> bytes | None:
        return self._safely(lambda: self.redis.get(f"{PREFIX}list:{version}:{key}"))

    def put_detail(self, product_id: str, version: str, body: bytes) -> None:
        self._put(f"{PREFIX}detail:{product_id}:{version}", f"{PREFIX}snapshot:detail:{product_id}", body)

    def put_list(self, key: str, version: str, body: bytes) -> None:
        self._put(f"{PREFIX}list:{version}:{key}", f"{PREFIX}snapshot:list:{key}", body)

    def _put(self, key: str, snapshot_key: str, body: bytes) -> None:
        def write():
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(key, body, ex=self.ttl)
                pipe.set(snapshot_key, body, ex=self.snapshot_ttl)
                pipe.execute()
        self._safely(write)

    def snapshot_detail(self, product_id: str) -> bytes | None:
        return self._safely(lambda: self.redis.get(f"{PREFIX}snapshot:detail:{product_id}"))

    def snapshot_list(self, key: str) -> bytes | None:
        return self._safely(lambda: self.redis.get(f"{PREFIX}snapshot:list:{key}"))

    def invalidate(self, product_ids: Iterable[str], deleted: Iterable[str] = ()) -> None:
        """Make the pages of these products, and every listing page, miss from now on (raises RedisError)."""
        # MULTI/EXEC: a reader never sees the product bumped but the listings not yet.
        with self.redis.pipeline(transaction=True) as pipe:
            for product_id in product_ids:
                pipe.incr(f"{PREFIX}v:{product_id}")
            for product_id in deleted:
                pipe.delete(f"{PREFIX}snapshot:detail:{product_id}")
            pipe.incr(GENERATION)
            pipe.execute()

    def invalidate_quietly(self, product_ids: Iterable[str], deleted: Iterable[str] = ()) -> None:
        """`invalidate`, logging instead of raising when Redis is away (the indexing task retries it)."""
        self._safely(lambda: self.invalidate(product_ids, deleted))
