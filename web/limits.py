"""Rate limits (flask-limiter on Redis): per user, per API key, or per IP for guests.

`RATE_LIMIT_DEFAULT` is one budget shared by all `/api/v1` and `/graphql` requests of a caller;
sign-in, registration, verification and the MFA steps also get `RATE_LIMIT_AUTH` per IP, which is
what stops password spraying across accounts. A refused request gets 429
with `Retry-After` and the `X-RateLimit-*` headers; an answer that set its own
`Retry-After` (a 503 in an outage) keeps it, the limiter only adds the headers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Flask, current_app, g, has_request_context, request
from flask_limiter import Limiter
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter
from limits.util import WindowStats
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from models.catalog.cache import versioned_read_lua
from settings import Settings

# Count the hit, start the window on the first one, and answer the count with the window's time left.
# ARGV[3] = n: KEYS[2 .. 1+n] are a bearer token's revocation keys, read in the same trip (web.auth.guard);
# given a version key after them (KEYS[2+n]) also read a versioned page there (models.catalog.cache).
HIT_AND_READ = """
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
local n = tonumber(ARGV[3])
local revocation = false
if n > 0 then
    revocation = redis.call('MGET', unpack(KEYS, 2, 1 + n))
end
if #KEYS == 1 + n then
    return {current, ttl, revocation}
end
""" + versioned_read_lua("KEYS[2 + n]", "ARGV[4]", "ARGV[5]") + "return {current, ttl, revocation, version, page}\n"


def _pack(*args) -> bytes:
    """A Redis command in RESP: an array of bulk strings (str as UTF-8, int as its decimal digits)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def read_along(keys: tuple[str, str, str]) -> None:
    """Have this request's rate-limit hit also read a cached page (version key, head, tail): one round trip.

    The cache and the limiter share REDIS_URL; `read_along_answer` gives the result back.
    """
    g.read_along = keys


def read_along_answer() -> tuple[str, bytes | None] | None:
    """The (version, page) read with the rate-limit hit, if one was asked for and made."""
    return g.pop("read_along_answer", None)


def check_along(keys: tuple[str, ...]) -> None:
    """Have this request's rate-limit hit also read these revocation keys (`revocation_answer` gives them)."""
    g.revocation_keys = keys


def revocation_answer() -> list | None:
    """The values of the revocation keys read with the rate-limit hit; None if no hit read them."""
    return g.pop("revocation_values", None)


# Where a trip already taken for this request waits for the limiter (web.catalog.fast takes it before Flask).
TRIP_TAKEN = "shop.rate_limit_trip"


@dataclass(frozen=True)
class Trip:
    """One rate-limit round trip's answer: the count in the window and what was read along with it."""

    key: str  # the limit's key (RateLimitItem.key_for), so a trip is used only for the limit it counted
    count: int
    ttl_ms: int
    revocation: list | None  # the revocation keys' values, when some were read
    page: tuple[str, bytes | None] | None  # (version, page), when a cached page was read

    def window(self, item) -> WindowStats:
        return WindowStats(time.time() + max(self.ttl_ms, 0) / 1000, max(0, item.amount - self.count))


class OneTripFixedWindow(FixedWindowRateLimiter):
    """A fixed window whose hit also reads the window's state, so the headers need no further round trip.

    flask-limiter asks for the window (a GET and a TTL) after every hit to
    write the X-RateLimit-* headers; the hit's answer is kept for the
    request and given back instead.
    """

    def __init__(self, storage):
        super().__init__(storage)
        self._client = storage.get_connection()
        self._script = self._client.register_script(HIT_AND_READ)

    def trip(self, item, key: str, revocation: tuple[str, ...] = (), along: tuple[str, str, str] | None = None,
             cost: int = 1) -> Trip:
        """Count a hit on `key` and read the revocation keys and the versioned page along: one round trip."""
        keys, args = [self.storage.prefixed_key(key), *revocation], [item.get_expiry(), cost, len(revocation)]
        if along:
            keys.append(along[0])
            args += along[1:]
        count, ttl_ms, revocation_values, *page = self._evalsha(keys, args)
        return Trip(key, int(count), ttl_ms, revocation_values if revocation else None,
                    (page[0].decode(), page[1]) if along else None)

    def _evalsha(self, keys: list, args: list) -> list:
        """The script's answer, sent on a pooled connection as one packed command.

        redis-py's command path (argument encoding, retries, observability hooks) cost more CPU than the
        rest of a cached page's hit; a hit needs one plain EVALSHA. A script Redis does not hold (a restart,
        SCRIPT FLUSH) takes redis-py's path, which loads it; so does a connection found dropped before the
        command left. A reply lost after it left is never asked again: the hit has most likely run, and
        running it again would count the request twice (the error fails open, see init_app).
        """
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            try:
                connection.send_packed_command([_pack(b"EVALSHA", self._script.sha, len(keys), *keys, *args)])
            except (RedisConnectionError, RedisTimeoutError):
                connection.disconnect()
                return self._script(keys, args)
            return connection.read_response()
        except NoScriptError:
            return self._script(keys, args)
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def hit(self, item, *identifiers: str, cost: int = 1) -> bool:
        if not has_request_context():
            return super().hit(item, *identifiers, cost=cost)
        key = item.key_for(*identifiers)
        revocation = g.pop("revocation_keys", ())
        along = g.pop("read_along", None)
        # A trip the WSGI layer in front already took for this request and limit is not counted twice.
        taken = request.environ.pop(TRIP_TAKEN, None)
        trip = taken if taken is not None and taken.key == key and cost == 1 else \
            self.trip(item, key, revocation, along, cost)
        if revocation:
            g.revocation_values = trip.revocation
        if along:
            g.read_along_answer = trip.page
        g.setdefault("rate_windows", {})[key] = trip.window(item)
        return trip.count <= item.amount

    def get_window_stats(self, item, *identifiers: str) -> WindowStats:
        seen = g.get("rate_windows", {}).get(item.key_for(*identifiers)) if has_request_context() else None
        return seen or super().get_window_stats(item, *identifiers)

def _settings() -> Settings:
    return current_app.extensions["shop"].settings


# Limits are callables read per request, so each app (and each test's app) uses its own settings.
limiter = Limiter(key_func=lambda: caller_key(), headers_enabled=True, strategy="fixed-window",
                  application_limits=[lambda: _settings().RATE_LIMIT_DEFAULT])


def caller_key() -> str:
    """The signed-in user or API key; else the client's address.

    Read from the credentials before the token's revocation check, which rides in the limiter's own
    round trip (`revocation_keys`); the guard refuses a revoked token before anything uses the caller.
    """
    from web.auth.guard import caller

    try:
        actor = caller()
    except Exception:  # a bad token is refused by the guard; count it against the address
        return f"ip:{request.remote_addr}"
    if actor.api_key_id:
        return f"key:{actor.api_key_id}"
    return f"user:{actor.user_id}" if actor.user_id else f"ip:{request.remote_addr}"


def client_address() -> str:
    return f"ip:{request.remote_addr}"


def auth_limit():
    """The tighter per-IP limit of the sign-in endpoints (a decorator for their views)."""
    return limiter.limit(lambda: _settings().RATE_LIMIT_AUTH, key_func=client_address, scope="auth",
                         override_defaults=False)


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        RATELIMIT_STORAGE_URI=settings.REDIS_URL,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX="ratelimit",
        # Never retried: a hit whose reply was lost (a timeout) has most likely run, and running it again
        # counts the request twice; a lost hit costs one uncounted request (fail open) instead.
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": settings.SERVICE_TIMEOUT,
                                   "socket_connect_timeout": settings.SERVICE_TIMEOUT,
                                   "retry": Retry(NoBackoff(), 0)},
        # Fail open: with Redis away requests are not counted (web.outages says what fails closed).
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    app.after_request(_restore_own_retry_after)  # runs after the limiter's header injection
    limiter.init_app(app)
    app.after_request(_note_own_retry_after)  # runs before it (Flask runs after_request hooks last-in first)
    if isinstance(limiter.storage, RedisStorage):
        limiter._limiter = OneTripFixedWindow(limiter.storage)


def _note_own_retry_after(response):
    """Keep the Retry-After an answer was given (a 503's OUTAGE_RETRY_AFTER, a carrier's wait).

    flask-limiter sets Retry-After on every answer to a counted request, to
    the later of the answer's own value and its window's reset (up to the
    window's length). Only its own 429 is about the window; any other answer
    that says when to come back says it for another reason, and must say ours.
    """
    own = response.headers.get("Retry-After")
    if own is not None:
        g.own_retry_after = own
    return response


def _restore_own_retry_after(response):
    own = g.pop("own_retry_after", None)
    if own is not None:
        response.headers["Retry-After"] = own
    return response


@limiter.request_filter
def _outside_the_api() -> bool:
    return not (request.path.startswith("/api/v1/") or request.path == "/graphql")
