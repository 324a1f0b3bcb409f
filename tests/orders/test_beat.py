"""Beat cancels unpaid orders once ORDER_PAYMENT_TIMEOUT has passed, with real worker and beat processes."""

from __future__ import annotations

from tests.conftest import start_beat, start_worker
from tests.helpers import wait_for
from tests.orders.conftest import place, status_of, stock_of

FAST = {"ORDER_PAYMENT_TIMEOUT": "2", "ORDER_EXPIRY_INTERVAL": "1"}


def test_beat_expires_unpaid_orders_and_releases_stock(app, client, people, make_variant, tmp_path):
    worker = start_worker(tmp_path / "worker", **FAST)
    beat = start_beat(tmp_path / "beat", **FAST)
    try:
        _, headers = people["customer"]
        variant = make_variant(stock=2)
        order_id = place(client, headers, variant, 2).json["id"]
        assert stock_of(app, variant) == (2, 2)
        wait_for(lambda: status_of(app, order_id) == "cancelled", timeout=30, message="the order to expire")
        assert stock_of(app, variant) == (2, 0)
        assert "tasks.payments.expire_unpaid_orders" in beat.log()
    finally:
        beat.stop()
        worker.stop()
