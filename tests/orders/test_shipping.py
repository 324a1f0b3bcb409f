"""Shipping rates through a real worker: web answers from the Redis cache; on a miss the worker asks the carrier."""

from __future__ import annotations

from sqlalchemy import text

from integrations.shipping.cache import HITS

RATES = "/api/v1/shipping/rates"
QUERY = {"postalCode": "10001", "country": "US", "city": "New York", "itemCount": 2}


def quote_rows(app) -> list:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT kwargs FROM outbox WHERE task = 'tasks.shipping.quote_rates'")).all()


def test_a_miss_is_fetched_by_the_worker_and_then_answered_from_the_cache(worker, client, app):
    first = client.get(RATES, query_string=QUERY)
    assert first.status_code == 200 and first.json["cached"] is False
    assert {r["service"] for r in first.json["items"]} >= {"ground", "next_day_air"}
    assert len(quote_rows(app)) == 1
    again = client.get(RATES, query_string=QUERY)
    assert again.json == {**first.json, "cached": True}
    assert len(quote_rows(app)) == 1  # a hit asks nobody
    ground = client.get(RATES, query_string={**QUERY, "service": "ground"}).json
    assert ground["cached"] is False and [r["service"] for r in ground["items"]] == ["ground"]
    assert client.get(RATES, query_string={**QUERY, "itemCount": 3}).json["cached"] is False
    redis = app.extensions["shop"].redis
    [key] = [k for k in redis.keys("shipping:rates:*") if k != HITS.encode() and b":" not in k[15:]][:1]
    assert 86000 < redis.ttl(key) <= 86400


def test_carrier_refusals_are_422_and_outages_503_with_retry_after(worker, client, app):
    query = {"country": "US", "city": "Nowhere"}
    down = client.get(RATES, query_string={**query, "postalCode": "99999"})
    wait = app.extensions["shop"].settings.SHIPPING_RATE_RETRY_AFTER
    assert down.status_code == 503 and down.headers["Retry-After"] == str(wait)  # ours, not the limiter's window
    assert "unavailable" in down.json["message"]
    again = client.get(RATES, query_string={**query, "postalCode": "99999"})
    assert again.status_code == 503 and len(quote_rows(app)) == 1  # the outage is remembered for Retry-After
    refused = client.get(RATES, query_string={**query, "postalCode": "00000"})
    assert refused.status_code == 422 and "postalCode" in refused.json["errors"]
    assert client.get(RATES, query_string={"country": "usa"}).status_code == 422
