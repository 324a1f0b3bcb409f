"""Queue search indexing for changed products through the outbox (after commit), and keep their variant facts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from models import task_names
from models.outbox import enqueue

BATCH = 500

# products.min_price and products.in_stock, from the variants as they are now in this transaction.
REFRESH_FACTS = text("""
    UPDATE products p SET min_price = facts.min_price, in_stock = facts.in_stock
    FROM (SELECT id,
                 (SELECT min(v.price) FROM product_variants v WHERE v.product_id = q.id) AS min_price,
                 EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = q.id AND v.stock > v.reserved)
                     AS in_stock
          FROM products q WHERE q.id = ANY(CAST(:ids AS uuid[]))) facts
    -- rows whose facts did not change are not rewritten (a category rename queues its whole subtree)
    WHERE p.id = facts.id AND (p.min_price, p.in_stock) IS DISTINCT FROM (facts.min_price, facts.in_stock)
      -- the ids again on the updated side: without them the planner hash-joins the batch against a scan of
      -- every product (half a second a batch at 300k products, so an import of n products cost O(n²))
      AND p.id = ANY(CAST(:ids AS uuid[]))
""")

def refresh_variant_facts(session: Session, product_ids: list[str]) -> None:
    """Recompute the products' lowest price and in-stock flag (listing sorts and filters on them)."""
    if product_ids:
        session.execute(REFRESH_FACTS, {"ids": product_ids})


def queue_indexing(session: Session, product_ids: Iterable[uuid.UUID | str], vectors_written: bool = False) -> None:
    """Have `tasks.search.index_products` (re)index or drop these products, in batches.

    The task also invalidates the cached catalog pages of those products, so
    every writer (web, imports, orders) calls this one function after a change;
    it also refreshes the products' variant facts in the writer's transaction
    (the task refreshes them again once the writer has committed: two overlapping writers of one product's
    variants each see the other's rows as they were, see tests/orders/test_indexing.py). `vectors_written`:
    the writer wrote the products' PostgreSQL search vectors itself (imports do, in their upsert), so the
    task need not.
    """
    ids = sorted({str(product_id) for product_id in product_ids})
    session.flush()
    for start in range(0, len(ids), BATCH):
        refresh_variant_facts(session, ids[start:start + BATCH])
        extra = {"vectors_written": True} if vectors_written else {}
        enqueue(session, task_names.INDEX_PRODUCTS, product_ids=ids[start:start + BATCH], **extra)
