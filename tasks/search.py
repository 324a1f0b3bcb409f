"""The search queue: (re)index changed products, drop deleted ones, and invalidate their cached pages."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from sqlalchemy import text

from integrations.errors import TransientError
from integrations.search import SearchBackend
from models.catalog.documents import documents_for
from models.catalog.indexing import refresh_variant_facts
from models import task_names as names
from tasks import runtime
from tasks.base import ShopTask

log = logging.getLogger(__name__)

# Orders coalesce their stock changes per product (models.orders.stock.queue_stock_indexing): the mark is
# removed, and committed, before the product is read, so a change this run does not see queues another.
UNMARK_PENDING = text("DELETE FROM search_pending WHERE product_id = ANY(CAST(:ids AS uuid[]))")
EXISTING = text("SELECT id::text FROM products WHERE id = ANY(CAST(:ids AS uuid[]))")


@shared_task(base=ShopTask, bind=True, name=names.INDEX_PRODUCTS)
def index_products(self, product_ids: list[str], vectors_written: bool = False) -> dict:
    """Index the products that exist, drop the ones that do not, then invalidate their cached pages.

    Idempotent: it writes each product's current state, however often it runs. `vectors_written`: the
    writer (an import chunk) already wrote the PostgreSQL search vectors in its own row writes, so with
    PostgreSQL search there is nothing to write again (any other backend is fed as always).
    """
    try:
        with self.session() as session:  # committed first: changes made after it queue a new task
            session.execute(UNMARK_PENDING, {"ids": product_ids})
        with self.session() as session:
            # Not redundant with the writer's own refresh: two writers of one product's variants at once each
            # compute the facts without the other's change; this runs after both committed.
            refresh_variant_facts(session, product_ids)
        backend = self.shop.search
        if vectors_written and self.shop.settings.SEARCH_BACKEND == "postgres":
            with self.session() as session:
                found = set(session.scalars(EXISTING, {"ids": product_ids}))
        else:
            found = backend.index_ids(product_ids)
        if found is None:
            found = _index_documents(backend, product_ids)
        deleted = [i for i in product_ids if i not in found]
        backend.delete(deleted)
        self.shop.catalog_cache.invalidate(product_ids, deleted)
    except redis.RedisError as exc:  # database errors: the task base retries them
        raise TransientError(repr(exc)) from exc
    log.info("products indexed", extra={"indexed": len(found), "deleted": len(deleted)})
    return {"indexed": len(found), "deleted": len(deleted)}


def _index_documents(backend: SearchBackend, product_ids: list[str]) -> set[str]:
    """For backends fed documents: build them from the catalog tables and send them; the ids found."""
    with runtime.database().session() as session:
        documents = documents_for(session, product_ids)
    backend.index(list(documents.values()))
    return set(documents)
