"""RabbitMQ stopped under checkout load, then started: checkouts keep answering, every task runs once after.

The broker is a private RabbitMQ node of the test's own (tests/faults/services.py), never the shared one.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace

import pytest

from tests.conftest import VHOST, start_beat, start_worker
from tests.faults.ledger import TALLIES, Tally, count_events, count_paid_orders, count_stock, scale, settled
from tests.faults.services import PrivateRabbit
from tests.helpers import bearer, make_user, wait_for
from tests.orders.conftest import ORDERS, place

OUTAGE_SECONDS = scale(8, 60)
# At most 25 checkouts a second: on a quiet machine an unpaced loop places ~100/s, which outruns the stock
# (a 409 is not a paid order) and leaves thousands of payments and emails to settle after the outage.
PACE = 1 / 25
STOCK = scale(500, 1000)


@pytest.fixture(scope="module")
def private_rabbit():
    node = PrivateRabbit(f"{VHOST}_faults_{os.getpid()}").start()
    yield node
    node.destroy()


@pytest.mark.timeout(scale(120, 1800))
def test_checkouts_go_on_while_the_broker_is_down_and_every_task_runs_once_after(
        settings, private_rabbit, make_variant, mail_dir, tmp_path):
    from web import create_app

    tally = Tally(f"RabbitMQ stopped {OUTAGE_SECONDS} s")
    env = {"CELERY_BROKER_URL": private_rabbit.url}
    app = create_app(replace(settings, CELERY_BROKER_URL=private_rabbit.url))
    client, db = app.test_client(), app.extensions["shop"].db
    with db.session() as session:
        customer = make_user(session, "customer")
    headers = bearer(app, customer)
    initial = {make_variant(stock=STOCK): STOCK for _ in range(3)}
    worker = start_worker(tmp_path / "worker", **env)
    beat = start_beat(tmp_path / "beat", **env)
    paid, during = [], 0

    def checkout() -> None:
        placed = place(client, headers, random.choice(list(initial)), 1)
        paying = client.post(f"{ORDERS}/{placed.json['id']}/pay", json={"paymentMethod": "sandbox_success"},
                             headers=headers) if placed.status_code == 201 else placed
        tally.server_errors += placed.status_code >= 500 or paying.status_code >= 500
        if (placed.status_code, paying.status_code) == (201, 202):
            paid.append(placed.json["id"])

    try:
        for _ in range(3):
            checkout()
        wait_for(lambda: settled(db.engine, mail_dir, paid), timeout=30, message="payments before the outage")
        private_rabbit.pause()
        back_at = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < back_at:
            started = time.monotonic()
            checkout()
            during += 1
            time.sleep(max(0.0, PACE - (time.monotonic() - started)))
        private_rabbit.resume()
        for _ in range(3):
            checkout()
        wait_for(lambda: settled(db.engine, mail_dir, paid), timeout=scale(90, 600), interval=0.5,
                 message="every payment and mail after the outage")
    finally:
        beat.stop()
        worker.stop()
    tally.notes.append(f"{during} checkouts while the broker was down, all 201/202")
    count_paid_orders(db.engine, mail_dir, paid, tally)
    count_stock(db.engine, initial, tally)
    count_events(app, tally)
    app.extensions["shop"].db.dispose()
    TALLIES.append(tally)
    assert during > 0 and len(paid) == during + 6
    assert not tally.problems(), tally
