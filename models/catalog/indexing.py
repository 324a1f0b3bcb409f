"""Queue search indexing for changed products through the outbox (after commit)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.orm import Session

from models.outbox import enqueue

BATCH = 500


def queue_indexing(session: Session, product_ids: Iterable[uuid.UUID | str]) -> None:
    """Have `tasks.search.index_products` (re)index or drop these products, in batches.

    The task also invalidates the cached catalog pages of those products, so
    every writer (web, imports, orders) calls this one function after a change.
    """
    ids = sorted({str(product_id) for product_id in product_ids})
    for start in range(0, len(ids), BATCH):
        enqueue(session, "tasks.search.index_products", product_ids=ids[start:start + BATCH])
