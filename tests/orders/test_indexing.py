"""Search indexing of stock changes, coalesced per product: one queued task covers every change until it runs."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from models.catalog.indexing import refresh_variant_facts
from models.orders.stock import MARK_PENDING
from tasks.search import UNMARK_PENDING
from tests.helpers import wait_for
from tests.orders.conftest import place


def product_of(app, variant) -> str:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT product_id::text FROM product_variants WHERE id = :id"),
                            {"id": variant}).scalar()


def queued_for(app, product_id: str) -> int:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products' "
                                 "AND kwargs->'product_ids' ? :id"), {"id": product_id}).scalar()


def pending(app, product_id: str) -> bool:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM search_pending WHERE product_id = :id"),
                            {"id": product_id}).scalar() == 1


def test_checkouts_of_one_product_queue_one_indexing_task_until_it_runs(app, client, people, make_variant):
    from tasks.search import index_products

    variant = make_variant(stock=10)
    product = product_of(app, variant)
    _, headers = people["customer"]
    for _ in range(3):
        assert place(client, headers, variant).status_code == 201
    assert queued_for(app, product) == 1 and pending(app, product)
    index_products(product_ids=[product])  # what the worker runs
    assert not pending(app, product)
    assert place(client, headers, variant).status_code == 201  # a change after the run queues a new task
    assert queued_for(app, product) == 2 and pending(app, product)


def test_the_task_waits_for_an_open_checkout_that_marked_the_product(app, make_variant):
    """The mark stays locked until the checkout commits, so the task's unmark (and then its read) comes after."""
    product = product_of(app, make_variant())
    engine = app.extensions["shop"].db.engine
    with engine.connect() as first:
        first.execute(MARK_PENDING, {"ids": [product]})
        first.commit()
        checkout = engine.connect()
        try:
            marked = checkout.execute(MARK_PENDING, {"ids": [product]}).all()
            assert marked == [(product, False)]  # already pending: no second task
            with engine.connect() as task:
                task.execute(text("SET lock_timeout = '300ms'"))
                with pytest.raises(OperationalError, match="lock timeout"):
                    task.execute(UNMARK_PENDING, {"ids": [product]})
                task.rollback()
                checkout.commit()
                task.execute(UNMARK_PENDING, {"ids": [product]})
                task.commit()
        finally:
            checkout.close()
    assert not pending(app, product)


def in_stock(app, product_id: str) -> bool:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT in_stock FROM products WHERE id = :id"), {"id": product_id}).scalar()


def test_the_task_repairs_variant_facts_two_overlapping_checkouts_each_computed_without_the_other(app, make_variant):
    """Why the task refreshes the facts again although every writer refreshed them in its own transaction.

    Two checkouts take the last unit of two variants of one product at once: each one's refresh reads the
    other variant as it was before (its statement's snapshot), so each finds the product still in stock and
    the product stays listed in stock once both commit. The task runs after both (its unmark waits for the
    marks), reads both, and repairs it.
    """
    from tasks.search import index_products

    first_variant = make_variant(stock=1)
    product = product_of(app, first_variant)
    engine = app.extensions["shop"].db.engine
    with engine.begin() as conn:
        second_variant = conn.execute(text(
            "INSERT INTO product_variants (id, product_id, sku, price, currency, stock, reserved) "
            "VALUES (gen_random_uuid(), :product, 'SECOND-' || md5(random()::text), 9, 'EUR', 1, 0) "
            "RETURNING id"), {"product": product}).scalar()
    with app.extensions["shop"].db.session() as session:
        refresh_variant_facts(session, [product])  # what its writer did
    assert in_stock(app, product) and not pending(app, product)

    take_last = text("UPDATE product_variants SET reserved = reserved + 1 WHERE id = :id")
    first, second = engine.connect(), engine.connect()
    try:
        first.execute(take_last, {"id": first_variant})
        second.execute(take_last, {"id": second_variant})
        assert first.execute(MARK_PENDING, {"ids": [product]}).all() == [(product, True)]
        second_pid = second.execute(text("SELECT pg_backend_pid()")).scalar()
        marked = []
        waiting = threading.Thread(target=lambda: marked.extend(second.execute(MARK_PENDING, {"ids": [product]})))
        waiting.start()
        wait_for(lambda: blocked(engine, second_pid), message="the second checkout's mark waiting for the first")
        first.commit()
        waiting.join(timeout=10)
        assert marked == [(product, False)]  # one task covers both
        second.commit()
    finally:
        first.close()
        second.close()
    assert in_stock(app, product)  # both units taken, each refresh saw one: stale
    index_products(product_ids=[product])
    assert not in_stock(app, product)


def blocked(engine, pid: int) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                            {"pid": pid}).scalar() is True
