"""The search queue: (re)index changed products, drop deleted ones, and invalidate their cached pages."""

from __future__ import annotations

import logging
import time

import redis
from celery import shared_task
from sqlalchemy import text

from integrations.errors import TransientError
from integrations.search import SearchBackend
from models.catalog.documents import documents_for
from models.catalog.indexing import refresh_variant_facts
from models.orders.stock import WINDOW_SECONDS
from models import task_names as names
from tasks import runtime
from tasks.base import ShopTask, run_again_in

log = logging.getLogger(__name__)

EXISTING = text("SELECT id::text FROM products WHERE id = ANY(CAST(:ids AS uuid[]))")

# Orders coalesce their stock changes across products (models.orders.stock.queue_stock_indexing): a window's
# task claims the unclaimed marks, in product order as checkouts take them (no deadlock between the two), and
# commits before reading the products: a mark an open checkout holds is claimed once that checkout committed.
# A redelivered task (the same id) finds the marks it claimed. `{eligible}` is which unclaimed marks it takes.
CLAIM = """
    WITH picked AS (SELECT product_id FROM search_pending
                    WHERE claimed_by = :task OR ({eligible})
                    ORDER BY product_id LIMIT :batch FOR UPDATE)
    UPDATE search_pending p SET claimed_by = :task, claimed_at = now()
    FROM picked WHERE p.product_id = picked.product_id
    RETURNING p.product_id::text
"""
CLAIM_WINDOW = text(CLAIM.format(eligible="claimed_by IS NULL"))
# The sweep: marks no window's task took (their checkout committed after it claimed, or the transaction that
# was opening the window rolled back), and claims whose task has not finished for long (dead-lettered).
CLAIM_LEFT = text(CLAIM.format(eligible="claimed_by IS NULL AND since < now() - interval '1 second' "
                                        "OR claimed_at < now() - interval '5 minutes'"))
# The marks still claimed by the task once it indexed them (a change made meanwhile unclaimed its mark, which
# stays), and the windows long over.
DONE = text("""
    WITH done AS (DELETE FROM search_pending WHERE product_id IN (
                      SELECT product_id FROM search_pending WHERE claimed_by = :task
                      ORDER BY product_id FOR UPDATE)),
    ended AS (DELETE FROM search_windows WHERE starts_at < now() - interval '1 minute')
    SELECT 1
""")
CLAIM_BATCH = 500


@shared_task(base=ShopTask, bind=True, name=names.INDEX_PRODUCTS)
def index_products(self, product_ids: list[str], vectors_written: bool = False) -> dict:
    """Index the products that exist, drop the ones that do not, then invalidate their cached pages.

    Idempotent: it writes each product's current state, however often it runs. `vectors_written`: the
    writer (an import chunk) already wrote the PostgreSQL search vectors in its own row writes, so with
    PostgreSQL search there is nothing to write again (any other backend is fed as always).
    """
    indexed, deleted = _index(self, product_ids, vectors_written)
    log.info("products indexed", extra={"indexed": indexed, "deleted": deleted})
    return {"indexed": indexed, "deleted": deleted}


@shared_task(base=ShopTask, bind=True, name=names.INDEX_PENDING)
def index_pending(self, window: float) -> dict:
    """Index every product marked pending and not claimed, once the window starting at `window` has ended.

    Queued by the change that opened the window, so the changes made in the rest of it are covered too;
    delivered early (as it is: it is published at once), it is delivered again when the window ends.
    """
    wait = window + WINDOW_SECONDS - time.time()
    if wait > 0:
        raise run_again_in(self, wait, "the window has not ended")
    return _index_claimed(self, CLAIM_WINDOW)


@shared_task(base=ShopTask, bind=True, name=names.SWEEP_PENDING_INDEXING)
def sweep_pending(self) -> dict:
    """Beat: index the marks no window's task took, and the ones whose task has not finished for minutes."""
    return _index_claimed(self, CLAIM_LEFT)


def _index_claimed(task: ShopTask, claim) -> dict:
    """Claim marks in batches (committed), index them, delete the marks still claimed; until none is left."""
    indexed = deleted = 0
    while True:
        with task.session() as session:
            product_ids = list(session.scalars(claim, {"task": task.request.id, "batch": CLAIM_BATCH}))
        if product_ids:
            found, gone = _index(task, product_ids)
            indexed, deleted = indexed + found, deleted + gone
        with task.session() as session:
            session.execute(DONE, {"task": task.request.id})
        if len(product_ids) < CLAIM_BATCH:
            break
    log.info("pending products indexed", extra={"indexed": indexed, "deleted": deleted})
    return {"indexed": indexed, "deleted": deleted}


def _index(task: ShopTask, product_ids: list[str], vectors_written: bool = False) -> tuple[int, int]:
    """Refresh the products' variant facts, (re)index them or drop the deleted ones, invalidate their cached
    pages; how many were indexed and dropped."""
    try:
        with task.session() as session:
            # Not redundant with the writer's own refresh: two writers of one product's variants at once each
            # compute the facts without the other's change; this runs after both committed.
            refresh_variant_facts(session, product_ids)
        backend = task.shop.search
        if vectors_written and task.shop.settings.SEARCH_BACKEND == "postgres":
            with task.session() as session:
                found = set(session.scalars(EXISTING, {"ids": product_ids}))
        else:
            found = backend.index_ids(product_ids)
        if found is None:
            found = _index_documents(backend, product_ids)
        deleted = [i for i in product_ids if i not in found]
        backend.delete(deleted)
        task.shop.catalog_cache.invalidate(product_ids, deleted)
    except redis.RedisError as exc:  # database errors: the task base retries them
        raise TransientError(repr(exc)) from exc
    return len(found), len(deleted)


def _index_documents(backend: SearchBackend, product_ids: list[str]) -> set[str]:
    """For backends fed documents: build them from the catalog tables and send them; the ids found."""
    with runtime.database().session() as session:
        documents = documents_for(session, product_ids)
    backend.index(list(documents.values()))
    return set(documents)
