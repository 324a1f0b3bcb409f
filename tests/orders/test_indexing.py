"""Search indexing of stock changes, coalesced across products: one task per window indexes every product marked."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from integrations.search.base import SearchQuery
from models.catalog.indexing import refresh_variant_facts
from models.orders.stock import MARK_PENDING, WINDOW_SECONDS
from tasks.search import CLAIM_WINDOW
from tests.helpers import wait_for
from tests.orders.conftest import place


def product_of(app, variant) -> str:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT product_id::text FROM product_variants WHERE id = :id"),
                            {"id": variant}).scalar()


def scalar(app, sql: str, **params):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def windows_queued(app) -> list[float]:
    with app.extensions["shop"].db.engine.connect() as conn:
        return list(conn.scalars(text("SELECT (kwargs->>'window')::float8 FROM outbox "
                                      "WHERE task = 'tasks.search.index_pending' ORDER BY created_at")))


def pending(app, product_id: str) -> bool:
    return scalar(app, "SELECT count(*) FROM search_pending WHERE product_id = :id", id=product_id) == 1


def claimed_by(app, product_id: str) -> str | None:
    return scalar(app, "SELECT claimed_by FROM search_pending WHERE product_id = :id", id=product_id)


def searchable(app, word: str) -> list[str]:
    return app.extensions["shop"].search.search(SearchQuery(word)).ids


def a_word() -> str:
    """A word no other product's name holds (letters only, so the text search keeps it whole)."""
    return "zq" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def run_window(window: float, task_id: str | None = None) -> dict:
    """The window task's body in this process, once its window has ended (what the worker runs then)."""
    from tasks.search import index_pending

    time.sleep(max(0.0, window + WINDOW_SECONDS - time.time()))
    return index_pending.apply(kwargs={"window": window}, task_id=task_id or str(uuid.uuid4())).get()


def run_sweep(task_id: str | None = None) -> dict:
    from tasks.search import sweep_pending

    return sweep_pending.apply(task_id=task_id or str(uuid.uuid4())).get()


def test_checkouts_of_many_products_in_one_window_queue_one_task_that_makes_them_all_searchable(
        app, client, people, make_variant):
    _, headers = people["customer"]
    words = [a_word() for _ in range(5)]
    variants = [make_variant(stock=10, name=f"Teapot {word}") for word in words]
    products = [product_of(app, variant) for variant in variants]
    assert not any(searchable(app, word) for word in words)  # written straight to the tables: not indexed yet
    started = time.monotonic()
    for variant in variants:
        assert place(client, headers, variant).status_code == 201
    elapsed = time.monotonic() - started
    windows = windows_queued(app)
    assert len(windows) == scalar(app, "SELECT count(*) FROM search_windows")  # each window queued once
    if elapsed < WINDOW_SECONDS:
        assert len(windows) <= 2  # five checkouts, one or two windows: not a task per product
    assert all(pending(app, product) for product in products)

    assert run_window(windows[-1]) == {"indexed": 5, "deleted": 0}
    assert [searchable(app, word) for word in words] == [[product] for product in products]
    assert not any(pending(app, product) for product in products)
    assert place(client, headers, variants[0]).status_code == 201  # a change after the run: a new window
    assert len(windows_queued(app)) == len(windows) + 1 and pending(app, products[0])


def test_opening_a_window_never_waits_for_another_open_transaction(app, make_variant):
    """Only one of two transactions marking in one window queues its task; the other does not wait for it."""
    first_product, second_product = (product_of(app, make_variant()) for _ in range(2))
    engine = app.extensions["shop"].db.engine
    for _ in range(3):  # both marks in one window: again from the next window's start if a slow machine split them
        time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS)
        first, second = engine.connect(), engine.connect()
        try:
            opened = first.execute(MARK_PENDING, {"ids": [first_product]}).scalar()
            assert opened is not None
            second.execute(text("SET lock_timeout = '300ms'"))
            second_opened = second.execute(MARK_PENDING, {"ids": [second_product]}).scalar()
            second.commit()
            first.commit()
        finally:
            first.close()
            second.close()
        if second_opened is None or second_opened == opened:
            break
    assert second_opened is None  # the window was being opened by the first, which alone queues its task
    assert run_window(opened) == {"indexed": 2, "deleted": 0}
    assert not pending(app, first_product) and not pending(app, second_product)


def test_a_killed_window_task_is_redelivered_and_finds_the_marks_it_claimed(app, make_variant, monkeypatch):
    word = a_word()
    product = product_of(app, make_variant(name=f"Jug {word}"))
    with app.extensions["shop"].db.engine.begin() as conn:
        window = conn.execute(MARK_PENDING, {"ids": [product]}).scalar()
    search = app.extensions["shop"].search
    index_ids = search.index_ids

    def killed(ids):
        raise SystemExit("killed between its claim and its indexing")

    monkeypatch.setattr(search, "index_ids", killed)
    task_id = str(uuid.uuid4())
    with pytest.raises(SystemExit):
        run_window(window, task_id)
    assert claimed_by(app, product) == task_id and not searchable(app, word)
    monkeypatch.setattr(search, "index_ids", index_ids)

    assert run_sweep() == {"indexed": 0, "deleted": 0}  # another claim is not taken while young
    assert run_window(window, task_id) == {"indexed": 1, "deleted": 0}  # the redelivery
    assert searchable(app, word) == [product] and not pending(app, product)


def test_the_sweep_takes_over_a_claim_whose_task_never_finished(app, make_variant):
    word = a_word()
    product = product_of(app, make_variant(name=f"Cup {word}"))
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text("INSERT INTO search_pending (product_id, since, claimed_by, claimed_at) "
                          "VALUES (:id, now() - interval '10 minutes', 'dead-lettered', "
                          "now() - interval '6 minutes')"), {"id": product})
    assert run_sweep() == {"indexed": 1, "deleted": 0}
    assert searchable(app, word) == [product] and not pending(app, product)


def test_a_change_made_while_the_task_indexes_stays_for_the_next_window(app, make_variant, monkeypatch):
    """The change unclaims the mark: the task's delete leaves it, and the next window's task indexes it."""
    product = product_of(app, make_variant())
    engine = app.extensions["shop"].db.engine
    with engine.begin() as conn:
        window = conn.execute(MARK_PENDING, {"ids": [product]}).scalar()
    search = app.extensions["shop"].search
    index_ids = search.index_ids

    def with_a_checkout_meanwhile(ids):
        with engine.begin() as checkout:
            checkout.execute(MARK_PENDING, {"ids": [product]})
        return index_ids(ids)

    monkeypatch.setattr(search, "index_ids", with_a_checkout_meanwhile)
    assert run_window(window) == {"indexed": 1, "deleted": 0}
    assert pending(app, product) and claimed_by(app, product) is None
    monkeypatch.setattr(search, "index_ids", index_ids)
    assert run_window(window) == {"indexed": 1, "deleted": 0}
    assert not pending(app, product)


def test_the_sweep_takes_a_mark_committed_after_its_window_task_claimed(app, make_variant):
    """A checkout that marked in an open window (so it queued nothing) and committed after that window's task
    claimed: the task did not see the mark; the beat sweep takes it once it is a second old (since its
    transaction began)."""
    early, late = (product_of(app, make_variant()) for _ in range(2))
    engine = app.extensions["shop"].db.engine
    time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS)
    with engine.begin() as conn:
        window = conn.execute(MARK_PENDING, {"ids": [early]}).scalar()
    assert window is not None
    assert run_sweep() == {"indexed": 0, "deleted": 0}  # a young mark is left to its window's task
    with engine.begin() as conn:  # the windows of the next seconds open already, however slow this machine
        conn.execute(text("INSERT INTO search_windows SELECT generate_series(to_timestamp(:w), "
                          "to_timestamp(:w) + interval '30 seconds', interval '1 second') ON CONFLICT DO NOTHING"),
                     {"w": window})
    checkout = engine.connect()
    try:
        assert checkout.execute(MARK_PENDING, {"ids": [late]}).scalar() is None  # the window is open already
        assert run_window(window) == {"indexed": 1, "deleted": 0}
        checkout.commit()
    finally:
        checkout.close()
    assert pending(app, late) and not pending(app, early)
    # The sweep takes a mark once it is a second old by the database's clock (since its transaction began);
    # how long the window task above waited for its window's end decides how old it is now.
    young = scalar(app, "SELECT extract(epoch FROM since + interval '1 second' - now()) FROM search_pending "
                        "WHERE product_id = :id", id=late)
    time.sleep(max(0.0, float(young)) + 0.05)
    assert run_sweep() == {"indexed": 1, "deleted": 0}
    assert not pending(app, late)


def test_the_claim_waits_for_an_open_checkout_that_marked_the_product(app, make_variant):
    """The mark stays locked until the checkout commits, so the task's claim (and then its read) comes after."""
    product = product_of(app, make_variant())
    engine = app.extensions["shop"].db.engine
    with engine.connect() as first:
        first.execute(MARK_PENDING, {"ids": [product]})
        first.commit()
        checkout = engine.connect()
        try:
            checkout.execute(MARK_PENDING, {"ids": [product]})
            with engine.connect() as task:
                task.execute(text("SET lock_timeout = '300ms'"))
                with pytest.raises(OperationalError, match="lock timeout"):
                    task.execute(CLAIM_WINDOW, {"task": "t", "batch": 10})
                task.rollback()
                checkout.commit()
                assert task.execute(CLAIM_WINDOW, {"task": "t", "batch": 10}).scalars().all() == [product]
                task.commit()
        finally:
            checkout.close()
    assert claimed_by(app, product) == "t"


def in_stock(app, product_id: str) -> bool:
    return scalar(app, "SELECT in_stock FROM products WHERE id = :id", id=product_id)


def test_the_window_task_repairs_variant_facts_two_overlapping_checkouts_each_computed_without_the_other(
        app, make_variant):
    """Why the task refreshes the facts again although every writer refreshed them in its own transaction.

    Two checkouts take the last unit of two variants of one product at once: each one's refresh reads the
    other variant as it was before (its statement's snapshot), so each finds the product still in stock and
    the product stays listed in stock once both commit. The window's task runs after both (its claim waits
    for the marks), reads both, and repairs it: the stock shown in listings is right after the window.
    """
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
    time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS)  # the first mark opens a window
    first, second = engine.connect(), engine.connect()
    try:
        first.execute(take_last, {"id": first_variant})
        second.execute(take_last, {"id": second_variant})
        opened = [first.execute(MARK_PENDING, {"ids": [product]}).scalar()]
        second_pid = second.execute(text("SELECT pg_backend_pid()")).scalar()
        waiting = threading.Thread(target=lambda: opened.append(
            second.execute(MARK_PENDING, {"ids": [product]}).scalar()))
        waiting.start()
        wait_for(lambda: blocked(engine, second_pid), message="the second checkout's mark waiting for the first")
        first.commit()
        waiting.join(timeout=10)
        second.commit()
    finally:
        first.close()
        second.close()
    assert in_stock(app, product)  # both units taken, each refresh saw one: stale
    run_window(opened[0])
    assert not in_stock(app, product)


def blocked(engine, pid: int) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                            {"pid": pid}).scalar() is True


def test_beat_sweeps_the_marks_every_search_sweep_interval(settings):
    from models import task_names
    from scheduler import beat_schedule

    job = beat_schedule(settings)["search-sweep-pending"]
    assert job["task"] == task_names.SWEEP_PENDING_INDEXING
    assert job["schedule"].total_seconds() == settings.SEARCH_SWEEP_INTERVAL


def test_a_worker_indexes_a_window_once_it_has_ended(app, client, people, make_variant, order_worker):
    """Through a real worker: the task, published at once, is delivered again when its window ends. (Last in
    this module: the worker stays up to its end and would take the windows the tests above run in-process.)"""
    _, headers = people["customer"]
    words = [a_word() for _ in range(3)]
    variants = [make_variant(stock=10, name=f"Kettle {word}") for word in words]
    products = [product_of(app, variant) for variant in variants]
    for variant in variants:
        assert place(client, headers, variant).status_code == 201
    wait_for(lambda: not any(pending(app, product) for product in products), timeout=30,
             message="the window's task to run")
    assert [searchable(app, word) for word in words] == [[product] for product in products]
