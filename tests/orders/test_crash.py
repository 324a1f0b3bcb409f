"""A worker killed with SIGKILL in the middle of a payment task: the order is paid once, mailed once."""

from __future__ import annotations

import os
import signal

from sqlalchemy import text

from tests.conftest import start_worker
from tests.helpers import mails, wait_for
from tests.orders.conftest import ORDERS, place, status_of


def test_sigkill_mid_payment_then_restart_pays_once(app, client, people, make_variant, mail_dir, tmp_path):
    customer, headers = people["customer"]
    slow = start_worker(tmp_path / "slow", SANDBOX_PAYMENT_LATENCY="5")
    try:
        order_id = place(client, headers, make_variant(stock=2), 1).json["id"]
        client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
        wait_for(lambda: "tasks.payments.start_payment" in slow.log(), timeout=15, message="the task to start")
        os.killpg(slow.proc.pid, signal.SIGKILL)  # the worker and its pool, mid vendor call
        slow.proc.wait()
    finally:
        slow.stop()
    assert status_of(app, order_id) == "pending"
    again = start_worker(tmp_path / "again")
    try:
        wait_for(lambda: status_of(app, order_id) == "processing", timeout=30, message="the redelivered payment")
        wait_for(lambda: mails(mail_dir, customer.email), message="the confirmation")
        wait_for(lambda: "payment event processed" in again.log(), message="the event to be processed")
    finally:
        again.stop()
    assert len(mails(mail_dir, customer.email)) == 1
    with app.extensions["shop"].db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(status) FROM payments")).one() == (1, "succeeded")
        assert conn.execute(text("SELECT count(*) FROM order_events WHERE to_status = 'processing'")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM email_messages WHERE template = 'order_confirmation'"
                                 )).scalar() == 1
