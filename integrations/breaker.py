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
