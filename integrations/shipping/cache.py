"""Shipping rates cached in Redis, keyed by origin, destination, parcel and service.

Readers (web) only look entries up and wait for them; the carrier is asked by
whoever calls `fetch` (a worker). An entry is the rates, or the carrier's
refusal of the address, or a short-lived note that the carrier was
unreachable. `claim` lets one reader ask for a missing entry while the others
wait; `fetch` announces each new entry on a channel named after its key.

Every lookup counts a hit, so a periodic job can refresh the most used
entries before they expire (`refresh_popular`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from decimal import Decimal

import redis

from integrations.errors import PermanentError, TransientError
from integrations.shipping.base import Parcel, Place, Rate, ShippingProvider

HITS = "shipping:rates:hits"
PREFIX = "shipping:rates:"
REFUSAL_TTL = 3600


@dataclass(frozen=True)
class RateQuery:
    """What a rate lookup asks for; `describe` and `from_description` carry it through JSON."""

    origin: Place
    destination: Place
    parcel: Parcel
    service: str = ""

    def describe(self) -> list:
        """Plain JSON values (the weight as text)."""
        return json.loads(json.dumps([asdict(self.origin), asdict(self.destination), asdict(self.parcel),
                                      self.service], default=str))

    @classmethod
    def from_description(cls, described: list) -> RateQuery:
        origin, destination, parcel, service = described
        parcel = dict(parcel)
        return cls(Place(**origin), Place(**destination), Parcel(Decimal(str(parcel.pop("weight_kg"))), **parcel),
                   service)

    @property
    def key(self) -> str:
        raw = json.dumps(self.describe(), sort_keys=True)
        return PREFIX + hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One cached answer: rates, or why there are none (refused: for good; unavailable: try again later)."""

    rates: list[Rate]
    refused: str = ""
    unavailable: str = ""


class RateCache:
    def __init__(self, client: redis.Redis, ttl: int, unavailable_ttl: int = 30):
        self.redis, self.ttl, self.unavailable_ttl = client, ttl, unavailable_ttl

    def lookup(self, query: RateQuery) -> Entry | None:
        """The cached entry for `query`, counting the hit."""
        self.redis.zincrby(HITS, 1, query.key)
        return _entry(self.redis.get(query.key))

    def lookup_quietly(self, query: RateQuery) -> Entry | None:
        """The cached entry, without counting a hit."""
        return _entry(self.redis.get(query.key))

    def claim(self, query: RateQuery, seconds: int) -> bool:
        """True for the one caller who should have the entry fetched in the next `seconds`."""
        return bool(self.redis.set(query.key + ":asked", 1, nx=True, ex=seconds))

    def release(self, query: RateQuery) -> None:
        self.redis.delete(query.key + ":asked")

    def wait(self, query: RateQuery, seconds: float) -> Entry | None:
        """The entry once it is there, waiting at most `seconds` for `fetch` to announce it."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(query.key + ":ready")
        try:
            deadline = time.monotonic() + seconds
            while True:
                entry = self.lookup_quietly(query)  # read after subscribing: no announcement is missed
                remaining = deadline - time.monotonic()
                if entry is not None or remaining <= 0:
                    return entry
                pubsub.get_message(timeout=remaining)
        finally:
            pubsub.close()

    def fetch(self, provider: ShippingProvider, query: RateQuery, keep_rates: bool = False) -> Entry:
        """Ask the carrier, cache what it said (a refusal and an outage too, for less long) and announce it.

        With `keep_rates`, a failure leaves rates already cached in place (a refresh ahead of expiry).
        """
        try:
            rates = [r for r in provider.rates(query.origin, query.destination, query.parcel)
                     if not query.service or r.service == query.service]
            entry, ttl = Entry(rates), self.ttl
        except TransientError as exc:
            entry, ttl = Entry([], unavailable=str(exc)), self.unavailable_ttl
        except PermanentError as exc:
            entry, ttl = Entry([], refused=str(exc)), min(self.ttl, REFUSAL_TTL)
        if keep_rates and not entry.rates and (self.lookup_quietly(query) or Entry([])).rates:
            return entry
        body = {"rates": [asdict(r) for r in entry.rates], "refused": entry.refused,
                "unavailable": entry.unavailable, "query": query.describe()}
        self.redis.set(query.key, json.dumps(body, default=str), ex=ttl)
        self.release(query)
        self.redis.publish(query.key + ":ready", b"1")
        return entry

    def refresh_popular(self, provider: ShippingProvider, top: int, expiring_within: int) -> int:
        """Re-fetch the `top` most asked-for rates that expire within `expiring_within` seconds."""
        refreshed = 0
        for raw_key in self.redis.zrevrange(HITS, 0, top - 1):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            cached, ttl = self.redis.get(key), self.redis.ttl(key)
            if cached is None:
                self.redis.zrem(HITS, key)  # expired unseen: no longer popular
                continue
            body = json.loads(cached)
            if ttl > expiring_within or not body.get("rates"):  # refusals and outages expire on their own
                continue
            self.fetch(provider, RateQuery.from_description(body["query"]), keep_rates=True)
            refreshed += 1
        return refreshed


def _entry(raw: bytes | None) -> Entry | None:
    if raw is None:
        return None
    body = json.loads(raw)
    rates = [Rate(item["service"], Decimal(item["amount"]), item["currency"], item["days"])
             for item in body["rates"]]
    return Entry(rates, body.get("refused", ""), body.get("unavailable", ""))
