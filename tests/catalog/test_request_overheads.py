"""What every catalog read costs besides its own work: the rate limiter's Redis traffic."""

import time
import uuid

from web.limits import OneTripFixedWindow, limiter

API = "/api/v1"


def _count_commands(client_of_redis, calls: list) -> None:
    """Record the name of each command `client_of_redis` sends (one round trip each), the limiter's script too."""
    execute = client_of_redis.execute_command

    def counted(*args, **kwargs):
        calls.append(args[0])
        return execute(*args, **kwargs)

    client_of_redis.execute_command = counted
    strategy = limiter._limiter
    if isinstance(strategy, OneTripFixedWindow) and strategy._client is client_of_redis:
        evalsha = strategy._evalsha  # sent packed on a pooled connection, not through execute_command

        def sent(keys, args):
            calls.append("EVALSHA")
            return evalsha(keys, args)

        strategy._evalsha = sent


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


def test_a_guests_cached_page_is_read_in_the_rate_limiters_round_trip(app, client, headers, create_product):
    product = create_product("Mug", variants=[{"sku": "M", "price": "5.00", "currency": "EUR", "stock": 1}])
    paths = [f"{API}/products/{product['id']}", f"{API}/products?sort=name"]
    rendered = [client.get(path).get_json() for path in paths]  # renders and caches both pages
    limiter_calls: list = []
    cache_calls: list = []
    _count_commands(limiter.storage.get_connection(), limiter_calls)
    _count_commands(app.extensions["shop"].redis, cache_calls)
    cached = [client.get(path) for path in paths]
    assert [response.get_json() for response in cached] == rendered
    assert all(r.headers["Cache-Control"].startswith("public") for r in cached)
    assert len(limiter_calls) == 2 and cache_calls == []  # one round trip a page, the rate limit's
    signed_in = client.get(paths[0], headers=headers["customer"])
    assert signed_in.status_code == 200 and signed_in.headers["Cache-Control"] == "private, no-cache"
    assert signed_in.data == cached[0].data  # a customer sees what a guest sees: the same cached page
    # The page and the token's revocation keys were read along, in the limiter's one trip.
    assert len(limiter_calls) == 3 and cache_calls == []
