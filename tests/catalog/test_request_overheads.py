"""What every catalog read costs besides its own work: the rate limiter's Redis traffic."""

import time
import uuid

from web.limits import limiter

API = "/api/v1"


def _count_commands(client_of_redis, calls: list) -> None:
    execute = client_of_redis.execute_command

    def counted(*args, **kwargs):
        calls.append(args[0])
        return execute(*args, **kwargs)

    client_of_redis.execute_command = counted


def test_the_rate_limiter_costs_one_redis_round_trip_and_still_writes_its_headers(app, client):
    calls: list = []
    _count_commands(limiter.storage.get_connection(), calls)
    first = client.get(f"{API}/products/{uuid.uuid4()}")
    second = client.get(f"{API}/products/{uuid.uuid4()}")
    assert first.status_code == second.status_code == 404
    assert len(calls) == 2, calls  # one per request, headers included
    assert int(first.headers["X-RateLimit-Remaining"]) == int(second.headers["X-RateLimit-Remaining"]) + 1
    assert first.headers["X-RateLimit-Limit"] == app.extensions["shop"].settings.RATE_LIMIT_DEFAULT.split()[0]
    assert time.time() < int(second.headers["X-RateLimit-Reset"]) <= time.time() + 61
