"""Circuit breakers around vendors, their state shared by every process through Redis.

While a vendor keeps failing, the breaker opens: calls fail at once with a
TransientError (tasks retry later) instead of waiting on the vendor. After
`reset_timeout` seconds one trial call goes through; success closes it.

A call through a closed breaker costs no Redis round trip: each process reads
the state (and the failure count) from Redis at most every `sync_seconds` and
keeps it between reads. Failures and state changes are written to Redis at
once, so every process learns of an open breaker within `sync_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pybreaker
import redis

from integrations.errors import TransientError

log = logging.getLogger(__name__)


class LogStateChanges(pybreaker.CircuitBreakerListener):
    """A log line on every state change (the metric hooks in here too)."""

    def state_change(self, cb, old_state, new_state):
        log.warning("circuit breaker state changed", extra={
            "breaker": cb.name, "from": getattr(old_state, "name", str(old_state)), "to": new_state.name})


class SyncedRedisStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage, read from Redis at most every `sync_seconds` instead of on every call.

    pybreaker reads the state before each call and resets the failure counter
    after each success: two Redis round trips per vendor call. Here the state
    and the counter are read together (one MGET) when the copy is older than
    `sync_seconds`, and a success resets the counter in Redis only when the
    copy says it is not zero. Failures (the counter's INCR, then the fresh
    count pybreaker compares with `fail_max`) and state changes still go to
    Redis at once. What a process may miss for up to `sync_seconds`: a state
    another process set (a few calls go through a breaker that just opened
    elsewhere, or are refused by one that just closed), and failures counted
    elsewhere since its last read (a success here leaves them in place, so
    the breaker may open a call or two early).
    """

    def __init__(self, state: str, redis_object: redis.Redis, namespace: str, sync_seconds: float = 0.5):
        self.sync_seconds = sync_seconds
        self._copy: tuple[str, int] | None = None  # (state, failure count) as last read from Redis
        self._read_at = float("-inf")
        super().__init__(state, redis_object, namespace=namespace)

    def _sync(self) -> tuple[str, int]:
        if self._copy is None or time.monotonic() - self._read_at >= self.sync_seconds:
            try:
                state, count = self._redis.mget(self._namespace("state"), self._namespace("fail_counter"))
            except redis.RedisError:
                self.logger.exception("RedisError: falling back to default circuit state")
                return self._fallback_circuit_state, 0  # not kept: the next call asks Redis again
            if state is None:  # missing (Redis was emptied): set up again, as pybreaker does
                self._initialize_redis_state(self._fallback_circuit_state)
            self._copy = (state.decode() if state is not None else self._fallback_circuit_state,
                          int(count or 0))
            self._read_at = time.monotonic()
        return self._copy

    @property
    def state(self) -> str:
        return self._sync()[0]

    @state.setter
    def state(self, state: str) -> None:
        pybreaker.CircuitRedisStorage.state.fset(self, state)
        self._copy, self._read_at = None, float("-inf")  # read back (with the counter) on the next call

    def increment_counter(self) -> None:
        super().increment_counter()
        self._copy = None

    def reset_counter(self) -> None:
        state, count = self._sync()
        if count:
            super().reset_counter()
            self._copy = (state, 0)


def make_breaker(name: str, redis_url: str | redis.Redis, fail_max: int = 5, reset_timeout: float = 30.0,
                 sync_seconds: float = 0.5) -> pybreaker.CircuitBreaker:
    """A breaker called `name` whose state lives in Redis under `breaker:<name>`, read at most every
    `sync_seconds` by each breaker (SyncedRedisStorage). `redis_url` may be a client already made (it must
    answer bytes, as pybreaker reads them: no decode_responses)."""
    client = redis.Redis.from_url(redis_url) if isinstance(redis_url, str) else redis_url
    storage = SyncedRedisStorage(pybreaker.STATE_CLOSED, client, namespace=f"breaker:{name}",
                                 sync_seconds=sync_seconds)
    return pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout, state_storage=storage,
                                    name=name, listeners=[LogStateChanges()],
                                    exclude=[lambda exc: not isinstance(exc, TransientError)])


class Guarded:
    """Proxies a vendor adapter: every public method call goes through the breaker.

    One breaker per thread, made by `make` on the thread's first call, all over the same state in Redis.
    pybreaker holds its breaker's lock for the whole guarded call, so threads sharing one breaker would
    call the vendor one at a time: in a worker of the threads pool, one payment waiting on Stripe would
    hold every other. Per thread the breakers are as separate as those of separate processes, which the
    state in Redis already ties together (see SyncedRedisStorage for what each may miss meanwhile).
    """

    def __init__(self, target, make: Callable[[], pybreaker.CircuitBreaker]):
        self._target = target
        self._make = make
        self._local = threading.local()

    @property
    def breaker(self) -> pybreaker.CircuitBreaker:
        """This thread's breaker."""
        found = getattr(self._local, "breaker", None)
        if found is None:
            found = self._local.breaker = self._make()
        return found

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args, **kwargs):
            try:
                return self.breaker.call(attr, *args, **kwargs)
            except pybreaker.CircuitBreakerError as exc:
                raise TransientError(f"{self.breaker.name}: circuit open, try later") from exc
        return call




def breaker_states(client: redis.Redis) -> dict[str, str]:
    """Every breaker's current state, as stored in Redis: {vendor: "closed" | "open" | "half-open"}."""
    found = {}
    for key in client.scan_iter(match=f"breaker:*:{pybreaker.CircuitRedisStorage.BASE_NAMESPACE}:state"):
        name = key.decode().split(":")[1]
        value = client.get(key)
        found[name] = value.decode() if value else "closed"
    return found


class BreakerCollector:
    """Prometheus gauge `vendor_circuit_open{vendor}`: 1 while a vendor's breaker is open, 0.5 half-open."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily("vendor_circuit_open", "1 while the vendor's circuit breaker is open",
                                  labels=["vendor"])
        try:
            states = breaker_states(self.client)
        except redis.RedisError:  # Redis is down: say nothing rather than fail the scrape
            return
        for name, state in sorted(states.items()):
            gauge.add_metric([name], {"open": 1.0, "half-open": 0.5}.get(state, 0.0))
        yield gauge
