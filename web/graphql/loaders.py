"""Per-request batch loaders: a page's parents register their keys, the first field asked loads them all.

GraphQL runs our resolvers synchronously, one object after another, so
Strawberry's async DataLoader would need an event loop per request. These do
the same batching without one: the resolver that loads a page of orders
registers their ids, and the first `load` of any of them fetches the rows of
every registered id in one query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.catalog.listing import load_page
from models.orders.tables import OrderEvent, Shipment


class BatchLoader:
    """Loads values for many keys at once with `fetch(keys) -> {key: value}`; missing keys get `default()`."""

    def __init__(self, fetch: Callable[[list], dict], default: Callable[[], Any] = lambda: None):
        self.fetch = fetch
        self.default = default
        self.pending: dict[Hashable, None] = {}
        self.loaded: dict[Hashable, Any] = {}

    def expect(self, keys: Iterable[Hashable]) -> None:
        """Keys the next load should fetch along with its own."""
        for key in keys:
            if key not in self.loaded:
                self.pending[key] = None

    def load(self, key: Hashable) -> Any:
        if key not in self.loaded:
            self.pending[key] = None
            keys, self.pending = list(self.pending), {}
            found = self.fetch(keys)
            for each in keys:
                self.loaded[each] = found[each] if each in found else self.default()
        return self.loaded[key]


def _grouped(rows, key: str) -> dict:
    groups = defaultdict(list)
    for row in rows:
        groups[getattr(row, key)].append(row)
    return groups


class Loaders:
    """The loaders of one request, sharing its session."""

    def __init__(self, session: Session):
        self.products = BatchLoader(lambda ids: {p.id: p for p in load_page(session, ids)})
        self.order_events = BatchLoader(lambda ids: _grouped(session.scalars(
            select(OrderEvent).where(OrderEvent.order_id.in_(ids)).order_by(OrderEvent.id)), "order_id"), list)
        self.shipments = BatchLoader(lambda ids: {s.order_id: s for s in session.scalars(
            select(Shipment).where(Shipment.order_id.in_(ids)))})
