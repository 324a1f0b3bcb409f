"""Shipping rates for web: read from the cache; a missing entry is fetched by a worker, never by web."""

from __future__ import annotations

from integrations.shipping.cache import Entry, RateCache, RateQuery
from models.db import Database
from models import task_names as names
from models.outbox import enqueue

QUOTE = names.QUOTE_RATES


def cached_or_asked(db: Database, cache: RateCache, query: RateQuery, wait: float,
                    ask_every: int) -> tuple[Entry | None, bool]:
    """(the entry, whether it was cached already); None when no worker answered within `wait` seconds.

    One caller per `ask_every` seconds queues the fetch (through the outbox); every caller then waits on
    the cache for the worker's answer.
    """
    entry = cache.lookup(query)
    if entry is not None:
        return entry, True
    if cache.claim(query, ask_every):
        try:
            with db.session() as session:
                enqueue(session, QUOTE, query=query.describe())
        except BaseException:
            cache.release(query)
            raise
    return cache.wait(query, wait), False
