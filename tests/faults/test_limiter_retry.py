"""A rate-limit hit whose reply is lost is counted once: the limiter's Redis writes are never retried.

Between the app and Redis sits a loopback proxy (tests/faults/proxy.py) that
passes every command to Redis and throws one reply away: the hit's script
ran, its answer never comes, the client times out. A client that retried
(redis-py's `Redis()` retries three times by default; `from_url` does not)
would reconnect, run the script again and count the one request twice.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import redis

from tests.faults.proxy import StallingProxy


@pytest.fixture
def proxy(settings):
    proxy = StallingProxy(urlsplit(settings.REDIS_URL).port or 6379, urlsplit(settings.REDIS_URL).hostname)
    yield proxy
    proxy.close()


def _hits(direct: redis.Redis) -> int:
    return sum(int(direct.get(key) or 0) for key in direct.scan_iter("*ratelimit*"))


def test_a_hit_whose_reply_is_lost_counts_once(settings, app, proxy):
    from web import create_app

    parts = urlsplit(settings.REDIS_URL)
    # Built after the suite's `app`: the limiter is one object per process and takes the last app's storage.
    app = create_app(replace(settings, REDIS_URL=f"redis://127.0.0.1:{proxy.port}{parts.path}", SERVICE_TIMEOUT=0.5,
                             RATE_LIMIT_DEFAULT="1000 per hour"))
    direct = redis.Redis.from_url(settings.REDIS_URL)
    client = app.test_client()
    assert client.get("/api/v1/categories").status_code == 200  # the script loaded, the connection open
    before = _hits(direct)
    assert before == 1

    proxy.drop_next_reply()  # the hit runs in Redis; its answer is lost and the client times out
    client.get("/api/v1/categories")  # the limiter fails open on the timeout; the answer itself is not the point
    assert proxy.dropped and proxy.dropped[0].startswith(b"*3\r\n:2\r\n")  # it was the hit's reply: count 2
    assert _hits(direct) == before + 1  # counted once, not once per attempt
    assert client.get("/api/v1/categories").status_code == 200
    assert _hits(direct) == before + 2
    app.extensions["shop"].db.dispose()
