"""Cached catalog pages in Redis, and the snapshot that serves them while PostgreSQL is away.

Detail pages are keyed by the product's version and listing pages by a
catalog-wide generation; `invalidate` bumps both, so a page rendered from
data read before the change is written under a key nobody reads any more.
Snapshots are the last page rendered for each key, kept much longer and
never invalidated (only deleted products' are dropped): they are what the
catalog answers with, marked stale, during a database outage.

Redis being away never fails a request: reads miss and writes are skipped.

Pages are public: the same for every caller that `reads_public_pages`. A
signed-in customer sees exactly what a guest sees, so both are served the
same entries; staff and admins never read or write them (see the function).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

import redis

from models.users.permissions import Actor
from models.users.tables import Role

log = logging.getLogger(__name__)

PREFIX = "catalog:"
GENERATION = PREFIX + "gen"


def versioned_read_lua(version_key: str, head: str, tail: str) -> str:
    """Lua setting `version` (read at `version_key`) and `page` (at head .. version .. tail; false if none)."""
    return (f"local version = redis.call('GET', {version_key}) or '0'\n"
            f"local page = redis.call('GET', {head} .. version .. {tail})\n")


# KEYS[1] holds the version; the page is at ARGV[1] .. version .. ARGV[2].
VERSIONED_GET = versioned_read_lua("KEYS[1]", "ARGV[1]", "ARGV[2]") + "return {version, page}\n"

# Bumps the generation and gives each product in ARGV[3 .. 2 + ARGV[2]] that generation as its version, for
# ARGV[1] seconds; drops the snapshots of the deleted products after them. One script: atomic, as MULTI/EXEC.
INVALIDATE = """
local generation = redis.call('INCR', KEYS[1])
local count = tonumber(ARGV[2])
for i = 3, count + 2 do redis.call('SET', ARGV[i], generation, 'EX', ARGV[1]) end
for i = count + 3, #ARGV do redis.call('DEL', ARGV[i]) end
return generation
"""
# How much longer than a page a product's version key lives: more than any render takes between reading the
# version and writing the page under it (see CatalogCache.invalidate).
VERSION_MARGIN = 300


# The roles whose catalog answers are a guest's, byte for byte. Staff and admins are left out on purpose:
# the catalog is where anything they alone may see (unpublished products, stock reservations, audit fields)
# would be added, and such an answer must never land in, or be served from, an entry guests read.
PUBLIC_PAGE_ROLES = frozenset({Role.GUEST, Role.CUSTOMER})


def reads_public_pages(actor: Actor) -> bool:
    """Whether `actor`'s catalog reads may be served from (and rendered into) the shared page cache."""
    return actor.role in PUBLIC_PAGE_ROLES and not actor.system and actor.can("products:view")


def query_key(pairs: Iterable[tuple[str, str]]) -> str:
    """A stable key for a query string, whatever the order of its parameters."""
    return hashlib.sha256("&".join(f"{k}={v}" for k, v in sorted(pairs)).encode()).hexdigest()


class CatalogCache:
    def __init__(self, client: redis.Redis, ttl: int, snapshot_ttl: int):
        self.redis = client
        self.ttl = ttl
        self.snapshot_ttl = snapshot_ttl
        self._versioned_get = client.register_script(VERSIONED_GET)
        self._invalidate = client.register_script(INVALIDATE)
        self.version_ttl = ttl + VERSION_MARGIN

    def _safely(self, operation, default=None):
        try:
            return operation()
        except redis.RedisError as exc:
            log.warning("catalog cache unavailable", extra={"error": repr(exc)})
            return default

    @staticmethod
    def detail_keys(product_id: str) -> tuple[str, str, str]:
        """Where a product page's version is, and the page's key before and after the version."""
        return f"{PREFIX}v:{product_id}", f"{PREFIX}detail:{product_id}:", ""

    @staticmethod
    def list_keys(key: str) -> tuple[str, str, str]:
        """Where the listing generation is, and the listing page's key before and after it."""
        return GENERATION, f"{PREFIX}list:", f":{key}"

    def lookup_detail(self, product_id: str) -> tuple[str, bytes | None]:
        """The product's current version and its cached page under it, in one round trip."""
        return self._lookup(*self.detail_keys(product_id))

    def lookup_list(self, key: str) -> tuple[str, bytes | None]:
        """The listing generation and the cached page of `key` under it, in one round trip."""
        return self._lookup(*self.list_keys(key))

    def _lookup(self, version_key: str, head: str, tail: str = "") -> tuple[str, bytes | None]:
        # The version is read before the database and used to write after it (see the module docstring).
        found = self._safely(lambda: self._versioned_get(keys=[version_key], args=[head, tail]))
        if not found:
            return "0", None
        return found[0].decode(), found[1]

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
        """Make the pages of these products, and every listing page, miss from now on (raises RedisError).

        One script, so a reader never sees the product bumped but the listings not yet. A product's new
        version is the new generation, a value no version key ever held before, and its key expires
        `version_ttl` seconds later: an import of a million products leaves no million keys behind. Once
        it has expired the version reads "0" again, and the only pages under "0" are those written while
        the key was absent, from data read after this change: the page written under the version read just
        before a change expires `ttl` seconds after it is written, before the key does.
        """
        versions = [f"{PREFIX}v:{product_id}" for product_id in product_ids]
        snapshots = [f"{PREFIX}snapshot:detail:{product_id}" for product_id in deleted]
        self._invalidate(keys=[GENERATION], args=[self.version_ttl, len(versions), *versions, *snapshots])

    def invalidate_quietly(self, product_ids: Iterable[str], deleted: Iterable[str] = ()) -> None:
        """`invalidate`, logging instead of raising when Redis is away (the indexing task retries it)."""
        self._safely(lambda: self.invalidate(product_ids, deleted))
