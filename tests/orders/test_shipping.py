"""Shipping rates cached in Redis for 24 hours, refreshed before they expire; carrier failures."""

from __future__ import annotations

from integrations.shipping.cache import HITS, CachedRates
from integrations.shipping.sandbox import SandboxShipping
from models.orders.places import origin_from, parcel_for, place_of

RATES = "/api/v1/shipping/rates"


def test_rates_are_cached_per_destination_parcel_and_service(client, app):
    query = {"postalCode": "10001", "country": "US", "city": "New York", "itemCount": 2}
    first = client.get(RATES, query_string=query)
    assert first.status_code == 200 and first.json["cached"] is False
    assert {r["service"] for r in first.json["items"]} >= {"ground", "next_day_air"}
    again = client.get(RATES, query_string=query)
    assert again.json == {**first.json, "cached": True}
    ground = client.get(RATES, query_string={**query, "service": "ground"}).json
    assert ground["cached"] is False and [r["service"] for r in ground["items"]] == ["ground"]
    assert client.get(RATES, query_string={**query, "itemCount": 3}).json["cached"] is False
    redis = app.extensions["shop"].redis
    [key] = [k for k in redis.keys("shipping:rates:*") if k != HITS.encode()][:1]
    assert 86000 < redis.ttl(key) <= 86400


def test_carrier_failures_are_503_and_422(client):
    query = {"country": "US", "city": "Nowhere"}
    assert client.get(RATES, query_string={**query, "postalCode": "99999"}).status_code == 503
    refused = client.get(RATES, query_string={**query, "postalCode": "00000"})
    assert refused.status_code == 422 and "postalCode" in refused.json["errors"]
    assert client.get(RATES, query_string={"country": "usa"}).status_code == 422


def test_popular_entries_are_refreshed_before_they_expire(app, settings):
    redis = app.extensions["shop"].redis
    cache = CachedRates(SandboxShipping(), redis, ttl=100)
    origin = origin_from(settings.SHIP_FROM)
    places = [place_of({"first_name": "", "last_name": "", "line1": "", "city": "X", "postal_code": code,
                        "country": "US"}) for code in ("10001", "20002")]
    for _ in range(3):
        cache.rates(origin, places[0], parcel_for(1))
    cache.rates(origin, places[1], parcel_for(1))
    keys = [k.decode() for k in redis.zrevrange(HITS, 0, -1)]
    assert cache.refresh_popular(top=2, expiring_within=50) == 0  # not close to expiring yet
    for key in keys:
        redis.expire(key, 30)
    assert cache.refresh_popular(top=1, expiring_within=50) == 1  # only the most used one
    assert redis.ttl(keys[0]) > 90 and redis.ttl(keys[1]) <= 30
