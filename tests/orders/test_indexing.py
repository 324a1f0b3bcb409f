"""Search indexing of stock changes, coalesced per product: one queued task covers every change until it runs."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from models.orders.stock import MARK_PENDING
from tasks.search import UNMARK_PENDING
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
