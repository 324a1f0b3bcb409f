"""Circuit breakers around vendors, their state shared by every process through Redis.

While a vendor keeps failing, the breaker opens: calls fail at once with a
TransientError (tasks retry later) instead of waiting on the vendor. After
`reset_timeout` seconds one trial call goes through; success closes it.
"""

from __future__ import annotations

import logging

import pybreaker
import redis

from integrations.errors import TransientError

log = logging.getLogger(__name__)


class LogStateChanges(pybreaker.CircuitBreakerListener):
    """A log line on every state change (the metric hooks in here too)."""

    def state_change(self, cb, old_state, new_state):
        log.warning("circuit breaker state changed", extra={
            "breaker": cb.name, "from": getattr(old_state, "name", str(old_state)), "to": new_state.name})


def make_breaker(name: str, redis_url: str, fail_max: int = 5, reset_timeout: float = 30.0) -> pybreaker.CircuitBreaker:
    """A breaker called `name` whose state lives in Redis under `breaker:<name>`."""
    client = redis.Redis.from_url(redis_url)  # pybreaker needs bytes replies (no decode_responses)
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=f"breaker:{name}")
    return pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout, state_storage=storage,
                                    name=name, listeners=[LogStateChanges()],
                                    exclude=[lambda exc: not isinstance(exc, TransientError)])


class Guarded:
    """Proxies a vendor adapter: every public method call goes through the breaker."""

    def __init__(self, target, breaker: pybreaker.CircuitBreaker):
        self._target = target
        self.breaker = breaker

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


