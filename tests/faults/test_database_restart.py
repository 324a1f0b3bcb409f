"""PostgreSQL restarted under load: 503 + Retry-After fast during the outage, catalog reads from the Redis
snapshot, and the same process's pools recover once it is back; nothing half-written.

The database is a scratch cluster of the test's own (tests/faults/services.py) on another port.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest

from models.catalog.cache import GENERATION
from tests.faults.ledger import TALLIES, Tally, count_events, count_stock, scale
from tests.faults.services import ScratchPostgres
from tests.helpers import bearer, make_user, wait_for
from tests.orders.conftest import place

OUTAGE_SECONDS = scale(3, 30)
LOAD = scale(20, 300)  # checkouts that succeed before the outage, and again after it


def _created(answers) -> int:
    return sum(status == 201 for status, _, _ in answers)


@pytest.fixture(scope="module")
def scratch_database():
    from alembic import command
    from web.cli import alembic_config, ensure_database

    cluster = ScratchPostgres().start()
    url = f"{cluster.server_url}/shop_faults"
    ensure_database(url)
    command.upgrade(alembic_config(url), "head")
    yield cluster, url
    cluster.destroy()


def _variant(db, stock: int) -> uuid.UUID:
    from models.catalog.tables import Product, ProductVariant

    with db.session() as session:
        product = Product(handle=f"p-{uuid.uuid4().hex[:10]}", name="Kettle")
        session.add(product)
        session.flush()
        variant = ProductVariant(product_id=product.id, sku=f"SKU-{uuid.uuid4().hex[:10]}", price=Decimal("20"),
                                 currency="EUR", stock=stock)
        session.add(variant)
        session.flush()
        return variant.id


class Shoppers(threading.Thread):
    """Checkouts one after another until stopped, recording every answer's status and time."""

    def __init__(self, app, headers, variant):
        super().__init__(daemon=True)
        self.client, self.headers, self.variant = app.test_client(), headers, variant
        self.answers: list[tuple[int, float, str | None]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            answer = place(self.client, self.headers, self.variant, 1)
            self.answers.append((answer.status_code, time.monotonic() - started, answer.headers.get("Retry-After")))


@pytest.mark.timeout(scale(120, 1800))
def test_a_database_restart_under_load(settings, scratch_database):
    from web import create_app

    cluster, url = scratch_database
    tally = Tally(f"PostgreSQL stopped {OUTAGE_SECONDS} s, restarted")
    app = create_app(replace(settings, DATABASE_URL=url, SERVICE_TIMEOUT=2.0))
    db, guest = app.extensions["shop"].db, app.test_client()
    with db.session() as session:
        customer = make_user(session, "customer")
    headers = bearer(app, customer)
    variant = _variant(db, 10_000)
    product_page = guest.get("/api/v1/products")
    assert product_page.status_code == 200  # cached, with its outage snapshot
    shoppers = Shoppers(app, headers, variant)
    shoppers.start()
    try:
        wait_for(lambda: _created(shoppers.answers) >= LOAD, timeout=60, message="checkouts before the outage")
        cluster.stop()
        down_from = len(shoppers.answers)
        fresh = guest.get("/api/v1/products")  # the cached page, still current
        app.extensions["shop"].redis.incr(GENERATION)  # as a write just before the outage would: pages now miss
        stale = guest.get("/api/v1/products")  # so it comes from the outage snapshot
        wait_for(lambda: len(shoppers.answers) > down_from + 3, timeout=30, message="checkouts during the outage")
        outage_end = time.monotonic() + OUTAGE_SECONDS
        wait_for(lambda: time.monotonic() > outage_end, timeout=OUTAGE_SECONDS + 5, message="the outage to last")
        back_from = len(shoppers.answers)  # before the start: answers after it may already succeed
        cluster.start()
        wait_for(lambda: _created(shoppers.answers[back_from:]) >= LOAD, timeout=60,
                 message="checkouts to succeed again in the same process")
    finally:
        shoppers.done.set()
        shoppers.join(30)
    during = shoppers.answers[down_from + 1:back_from]
    tally.orders = sum(status == 201 for status, _, _ in shoppers.answers)
    tally.server_errors = sum(status >= 500 and status != 503 for status, _, _ in shoppers.answers)
    refused = [answer for answer in during if answer[0] == 503]
    tally.notes.append(f"{len(during)} checkouts during the outage: {len(refused)} answered 503 + Retry-After, "
                       f"slowest {max(seconds for _, seconds, _ in during):.2f} s; catalog read "
                       f"{stale.status_code} stale={stale.headers.get('X-Catalog-Stale')}")
    with db.engine.connect() as conn:
        half = conn.exec_driver_sql("SELECT count(*) FROM orders o WHERE NOT EXISTS "
                                    "(SELECT 1 FROM order_items i WHERE i.order_id = o.id)").scalar()
        made = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar()
    tally.orders_stuck += half
    tally.orders_lost += max(0, tally.orders - made)  # answered 201 but not stored
    tally.orders_doubled += max(0, made - tally.orders)  # stored without a 201 (a half-answered request)
    count_stock(db.engine, {variant: 10_000}, tally)
    count_events(app, tally)
    db.dispose()
    TALLIES.append(tally)
    assert during and all(status == 503 and retry for status, _, retry in during), [
        answer for answer in during if answer[0] != 503][:5]
    assert max(seconds for _, seconds, _ in during) < 5  # fail fast, not a hang
    assert fresh.status_code == 200 and fresh.get_data() == product_page.get_data()
    assert stale.status_code == 200 and stale.headers.get("X-Catalog-Stale") == "true"
    assert stale.get_data() == product_page.get_data()
    assert not tally.problems(), tally
