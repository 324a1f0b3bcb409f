"""Shipping rates with no worker running: web never calls the carrier; the rate cache on its own."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from integrations.errors import TransientError
from integrations.shipping.cache import RateCache, RateQuery
from integrations.shipping.sandbox import SandboxShipping
from models.orders.places import origin_from, parcel_for, place_of
from tests.orders.test_shipping import QUERY, RATES, quote_rows


def query_for(settings, postal_code: str, service: str = "") -> RateQuery:
    place = place_of({"first_name": "", "last_name": "", "line1": "", "city": "X", "postal_code": postal_code,
                      "country": "US", "region": ""})
    return RateQuery(origin_from(settings.SHIP_FROM), place, parcel_for(1), service)


@pytest.fixture
def impatient_app(settings):
    from web import create_app

    app = create_app(replace(settings, SHIPPING_RATE_WAIT=0.3))
    yield app
    app.extensions["shop"].db.dispose()


def test_without_a_worker_web_asks_once_and_answers_503_not_the_carrier(impatient_app):
    client = impatient_app.test_client()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(client.get(RATES, query_string=QUERY)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [503] * 4
    assert all(int(a.headers["Retry-After"]) >= 5 for a in answers)
    assert "not answered yet" in answers[0].json["message"]
    [(kwargs,)] = quote_rows(impatient_app)  # four concurrent misses, one request to the worker
    assert kwargs["query"][1]["postal_code"] == "10001"
    redis = impatient_app.extensions["shop"].redis
    assert RateCache(redis, 60).lookup_quietly(RateQuery.from_description(kwargs["query"])) is None


def test_a_waiting_reader_gets_the_answer_the_moment_it_is_cached(app, settings):
    cache = RateCache(app.extensions["shop"].redis, ttl=100)
    wanted = query_for(settings, "10001")
    timer = threading.Timer(0.2, cache.fetch, (SandboxShipping(), wanted))
    timer.start()
    entry = cache.wait(wanted, 10)
    timer.join()
    assert entry is not None and entry.rates and not entry.refused
    assert cache.wait(query_for(settings, "20002"), 0.1) is None


def test_popular_entries_are_refreshed_before_they_expire_and_kept_when_the_carrier_fails(app, settings):
    redis = app.extensions["shop"].redis
    cache, carrier = RateCache(redis, ttl=100), SandboxShipping()
    popular, other = query_for(settings, "10001"), query_for(settings, "20002")
    for wanted in (popular, other):
        cache.fetch(carrier, wanted)
    for _ in range(3):
        cache.lookup(popular)
    cache.lookup(other)
    assert cache.refresh_popular(carrier, top=2, expiring_within=50) == 0  # not close to expiring yet
    for wanted in (popular, other):
        redis.expire(wanted.key, 30)
    assert cache.refresh_popular(carrier, top=1, expiring_within=50) == 1  # only the most used one
    assert redis.ttl(popular.key) > 90 and redis.ttl(other.key) <= 30

    class Down:
        def rates(self, *args):
            raise TransientError("carrier down")

    redis.expire(popular.key, 30)
    assert cache.refresh_popular(Down(), top=1, expiring_within=50) == 1
    assert cache.lookup_quietly(popular).rates  # the rates still there stay until they expire
