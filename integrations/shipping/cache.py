"""Shipping rates cached in Redis, keyed by origin, destination, parcel and service.

Every lookup counts a hit, so a periodic job can refresh the most used
entries before they expire (`refresh_popular`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from decimal import Decimal

import redis

from integrations.shipping.base import Parcel, Place, Rate, ShippingProvider

HITS = "shipping:rates:hits"


def _key(origin: Place, destination: Place, parcel: Parcel, service: str) -> str:
    raw = json.dumps([asdict(origin), asdict(destination), asdict(parcel), service], default=str, sort_keys=True)
    return "shipping:rates:" + hashlib.sha256(raw.encode()).hexdigest()


class CachedRates:
    def __init__(self, provider: ShippingProvider, client: redis.Redis, ttl: int):
        self.provider, self.redis, self.ttl = provider, client, ttl

    def rates(self, origin: Place, destination: Place, parcel: Parcel, service: str = "") -> tuple[list[Rate], bool]:
        """The rates (only `service`'s when given) and whether they came from the cache."""
        key = _key(origin, destination, parcel, service)
        self.redis.zincrby(HITS, 1, key)
        cached = self.redis.get(key)
        if cached is not None:
            return [_rate(item) for item in json.loads(cached)["rates"]], True
        return self._fetch(key, origin, destination, parcel, service), False

    def _fetch(self, key: str, origin: Place, destination: Place, parcel: Parcel, service: str) -> list[Rate]:
        rates = [r for r in self.provider.rates(origin, destination, parcel) if not service or r.service == service]
        body = {"rates": [asdict(r) for r in rates],
                "query": [asdict(origin), asdict(destination), asdict(parcel), service]}
        self.redis.set(key, json.dumps(body, default=str), ex=self.ttl)
        return rates

    def refresh_popular(self, top: int, expiring_within: int) -> int:
        """Re-fetch the `top` most asked-for entries that expire within `expiring_within` seconds."""
        refreshed = 0
        for raw_key in self.redis.zrevrange(HITS, 0, top - 1):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            cached, ttl = self.redis.get(key), self.redis.ttl(key)
            if cached is None:
                self.redis.zrem(HITS, key)  # expired unseen: no longer popular
                continue
            if ttl > expiring_within:
                continue
            origin, destination, parcel, service = json.loads(cached)["query"]
            self._fetch(key, Place(**origin), Place(**destination),
                        Parcel(Decimal(parcel.pop("weight_kg")), **parcel), service)
            refreshed += 1
        return refreshed


def _rate(item: dict) -> Rate:
    return Rate(item["service"], Decimal(item["amount"]), item["currency"], item["days"])
