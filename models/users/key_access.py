"""API keys at request time: verified through a Redis cache, their use counted in Redis and flushed in batches.

A request with a key costs one Redis round trip and no SQL while the key's
entry is cached (`API_KEY_CACHE_TTL`): a script reads the entry (id and
scopes, under the SHA-256 of the key), refuses it if the key is marked
revoked, and counts the use (count, last use, caller's address) in the
same trip. A miss reads the row once (a plain SELECT, no lock) and fills
the entry. Nothing writes the row per request, so requests with one key no
longer queue on its row lock.

Revocation takes effect at once: revoking marks the key's id in Redis
(`apikey:revoked:<id>`, kept a day, far longer than an entry lives) and
drops its entry, before the revoking transaction commits; both scripts
refuse a marked key, so an entry filled from a read made just before the
revocation is never served.

`flush_usage` (the `api-keys-flush-usage` beat job) moves each key's
counters aside under a batch number higher than any before, adds them to
the row (`use_count`, `last_used_at`) together with one `api_key_used`
security event per key and batch, and only then drops them. The row
remembers the highest batch applied and takes only higher ones, so a flush
that dies after its commit, or two flushes at once, never count a batch
twice.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass

from redis import Redis
from redis.commands.core import Script
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models.errors import Unauthorized
from models.security.events import record_event
from models.users.auth import digest
from models.users.permissions import Actor
from models.users.tables import ApiKey

KEY_PREFIX = "shk_"
ENTRY = "apikey:live:"  # + SHA-256 of the key -> {"id", "scopes"}
REVOKED = "apikey:revoked:"  # + id
DIRTY = "apikey:usage:dirty"  # ids with uses not yet taken by a flush
FLUSHING = "apikey:usage:flushing"  # ids with a batch taken but not yet known to be applied
REVOKED_MARK_SECONDS = 86400
IPS_IN_EVENT = 20

# Counted once per request id (ARGV[3]): a command the client sends again (redis-py retries one whose
# answer timed out, though Redis ran it) or a second check in the same request counts nothing more.
_COUNT = """
if redis.call('SET', 'apikey:counted:' .. ARGV[3], 1, 'NX', 'EX', 60) then
    local usage = 'apikey:usage:' .. id
    redis.call('HINCRBY', usage, 'count', 1)
    redis.call('HSET', usage, 'last', ARGV[1])
    if ARGV[2] ~= '' then redis.call('SADD', 'apikey:usage-ips:' .. id, ARGV[2]) end
    redis.call('SADD', 'apikey:usage:dirty', id)
end
"""

# KEYS[1] the entry; ARGV[1] now (epoch seconds), ARGV[2] the caller's address, ARGV[3] the request's id.
# The entry, or false.
VERIFY_AND_COUNT = """
local entry = redis.call('GET', KEYS[1])
if not entry then return false end
local id = cjson.decode(entry)['id']
if redis.call('EXISTS', 'apikey:revoked:' .. id) == 1 then return false end
""" + _COUNT + "return entry\n"

# KEYS[1] the entry; ARGV[1..3] as above, ARGV[4] the entry, ARGV[5] its TTL, ARGV[6] the key's id.
FILL_AND_COUNT = """
local id = ARGV[6]
if redis.call('EXISTS', 'apikey:revoked:' .. id) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[5])
""" + _COUNT + "return 1\n"

# ARGV[1] the key's id. The batch to apply (a pending one first), as a flat hash. A new batch is numbered
# above every earlier one of the key: Redis's clock in microseconds, or the last number plus one if higher,
# so numbers keep rising across a Redis that lost its data, and across a clock that went back.
TAKE_BATCH = """
local id = ARGV[1]
local pending = 'apikey:flushing:' .. id
if redis.call('EXISTS', pending) == 0 then
    local usage = 'apikey:usage:' .. id
    redis.call('SREM', 'apikey:usage:dirty', id)
    if redis.call('EXISTS', usage) == 0 then return false end
    local now = redis.call('TIME')
    local batch = tonumber(now[1]) * 1000000 + tonumber(now[2])
    local last = tonumber(redis.call('GET', 'apikey:usage:seq:' .. id) or '0')
    if batch <= last then batch = last + 1 end
    redis.call('SET', 'apikey:usage:seq:' .. id, string.format('%d', batch))
    redis.call('RENAME', usage, pending)
    local ips = redis.call('SMEMBERS', 'apikey:usage-ips:' .. id)
    redis.call('DEL', 'apikey:usage-ips:' .. id)
    redis.call('HSET', pending, 'batch', string.format('%d', batch), 'ips', table.concat(ips, ' '))
    redis.call('SADD', 'apikey:usage:flushing', id)
end
return redis.call('HGETALL', pending)
"""

# ARGV[1] the key's id, ARGV[2] the batch applied: drop it (unless a later one replaced it).
DROP_BATCH = """
local pending = 'apikey:flushing:' .. ARGV[1]
if redis.call('HGET', pending, 'batch') == ARGV[2] then
    redis.call('DEL', pending)
    redis.call('SREM', 'apikey:usage:flushing', ARGV[1])
end
return 1
"""


# Sent by SHA (EVALSHA; loaded on first use), not as text on every request.
_VERIFY, _FILL, _TAKE, _DROP = (Script(None, text.encode())
                                for text in (VERIFY_AND_COUNT, FILL_AND_COUNT, TAKE_BATCH, DROP_BATCH))


@dataclass(frozen=True)
class KeyAccess:
    """The Redis side of API keys: the verification cache, revocation marks and usage counters."""

    redis: Redis
    ttl: int = 60

    def verify(self, session_factory, key: str, ip: str | None, request_id: str) -> Actor:
        """The actor of the live key `key`, its use counted once per `request_id`; Unauthorized otherwise.

        Redis errors propagate (the caller answers 503: keys fail closed).
        """
        key_hash = digest(key)
        args = [f"{time.time():.3f}", ip or "", request_id]
        entry = _VERIFY([ENTRY + key_hash], args, client=self.redis)
        if entry is None:
            row = self._read_row(session_factory, key, key_hash)
            entry = json.dumps({"id": str(row[0]), "scopes": sorted(row[1])})
            if not _FILL([ENTRY + key_hash], [*args, entry, self.ttl, str(row[0])], client=self.redis):
                raise Unauthorized("invalid API key")  # revoked while we read it
        found = json.loads(entry)
        return Actor(api_key_id=uuid.UUID(found["id"]), scopes=frozenset(found["scopes"]), ip=ip)

    @staticmethod
    def _read_row(session_factory, key: str, key_hash: str) -> tuple[uuid.UUID, list[str]]:
        _, _, rest = key.partition(KEY_PREFIX)
        prefix = rest.split("_", 1)[0]
        if not prefix:
            raise Unauthorized("invalid API key")
        with session_factory() as session:
            row = session.execute(select(ApiKey.id, ApiKey.scopes, ApiKey.key_hash)
                                  .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))).first()
        if row is None or not secrets.compare_digest(row.key_hash, key_hash):
            raise Unauthorized("invalid API key")
        return row.id, row.scopes

    def forget(self, keys: list[tuple[uuid.UUID, str]]) -> None:
        """Stop serving these keys (id, SHA-256) at once: mark them revoked and drop their entries."""
        if not keys:
            return
        pipe = self.redis.pipeline(transaction=True)
        for key_id, key_hash in keys:
            pipe.set(REVOKED + str(key_id), 1, ex=REVOKED_MARK_SECONDS)
            pipe.delete(ENTRY + key_hash)
        pipe.execute()

    def flush_usage(self, session_factory, limit: int = 1000) -> int:
        """Add the counted uses of up to `limit` keys to their rows; the number of uses applied."""
        ids = [raw.decode() for raw in self.redis.sunion(DIRTY, FLUSHING)][:limit]
        batches = []
        for key_id in ids:
            fields = _TAKE([], [key_id], client=self.redis)
            if fields:
                batch = dict(zip(fields[::2], fields[1::2], strict=True))
                batches.append((key_id, {k.decode(): v.decode() for k, v in batch.items()}))
        applied = 0
        with session_factory() as session:
            for key_id, batch in batches:
                applied += _apply(session, uuid.UUID(key_id), batch)
            session.commit()
        for key_id, batch in batches:
            _DROP([], [key_id, batch["batch"]], client=self.redis)
        return applied

    def pending_uses(self, key_id: uuid.UUID) -> int:
        """Uses of a key counted in Redis and not yet flushed to its row."""
        counts = [self.redis.hget(f"apikey:{where}:{key_id}", "count") for where in ("usage", "flushing")]
        return sum(int(count) for count in counts if count)


def _apply(session: Session, key_id: uuid.UUID, batch: dict) -> int:
    """Add one batch to its key's row, once: a batch not above the last applied one (or of a deleted key)
    adds nothing, so neither a flush that died after its commit nor one that read a batch another flush
    has since applied and dropped counts it twice."""
    count, last, number = int(batch.get("count", 0)), float(batch["last"]), int(batch["batch"])
    done = session.scalar(
        update(ApiKey).where(ApiKey.id == key_id, or_(ApiKey.usage_batch.is_(None), ApiKey.usage_batch < number))
        .values(use_count=ApiKey.use_count + count, usage_batch=number,
                last_used_at=func.greatest(ApiKey.last_used_at, func.timezone("UTC", func.to_timestamp(last))))
        .returning(ApiKey.id))
    if done is None:
        return 0
    ips = sorted(filter(None, batch.get("ips", "").split(" ")))
    record_event(session, "api_key_used", Actor(api_key_id=key_id), requests=count,
                 last_used_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)),
                 ips=ips[:IPS_IN_EVENT], distinct_ips=len(ips))
    return count
