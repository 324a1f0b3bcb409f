"""Graceful stop: a worker sent SIGTERM requeues what it cannot finish and exits in its grace period;
gunicorn finishes the requests in flight; beat exits."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import start_beat, start_worker
from tests.faults.ledger import TALLIES, Tally, count_paid_orders
from tests.helpers import mails, wait_for
from tests.orders.conftest import ADDRESS, ORDERS, place, start_gunicorn, status_of

GRACE = 2


def _exited_within(process, seconds: float) -> float:
    """SIGTERM the process (its main pid only, as docker and Kubernetes do) and the seconds it took to exit."""
    started = time.monotonic()
    os.kill(process.proc.pid, signal.SIGTERM)
    wait_for(lambda: process.proc.poll() is not None, timeout=seconds, message=f"{process.command[3:5]} to exit")
    return time.monotonic() - started


def _payment_locked(app) -> bool:
    """Whether a task holds the payment row (start_payment locks it around the vendor call)."""
    from sqlalchemy.exc import OperationalError

    with app.extensions["shop"].db.engine.connect() as conn:
        try:
            conn.execute(text("SET LOCAL lock_timeout = '10ms'"))
            conn.execute(text("SELECT id FROM payments FOR UPDATE")).all()
            return False
        except OperationalError:
            return True


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_stopped_mid_task_requeues_it_within_its_grace_and_it_runs_once(
        app, client, people, make_variant, mail_dir, tmp_path, pool):
    """Processes are killed when the grace ends; a thread cannot be, so the threads worker (the Procfile's
    `orders`) exits at once instead of waiting out the vendor call (tasks.pools.ThreadPool)."""
    customer, headers = people["customer"]
    slow = start_worker(tmp_path / "slow", pool=pool, REMAP_SIGTERM="SIGQUIT", WORKER_SHUTDOWN_GRACE=str(GRACE),
                        SANDBOX_PAYMENT_LATENCY="60")
    try:
        order_id = place(client, headers, make_variant(stock=2), 1).json["id"]
        client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
        wait_for(lambda: _payment_locked(app), timeout=15, message="the task to be in its vendor call")
        took = _exited_within(slow, GRACE + 15)
    finally:
        slow.stop()
    assert took < GRACE + 15 and "Initiating Soft Shutdown" in slow.log()
    assert status_of(app, order_id) == "pending"
    again = start_worker(tmp_path / "again", pool=pool)
    try:
        wait_for(lambda: status_of(app, order_id) == "processing", timeout=30, message="the requeued payment")
        wait_for(lambda: mails(mail_dir, customer.email), message="the confirmation")
    finally:
        again.stop()
    tally = Tally(f"worker ({pool}) SIGTERM mid-task ({GRACE} s grace)")
    count_paid_orders(app.extensions["shop"].db.engine, mail_dir, [order_id], tally)
    tally.notes.append(f"the worker exited {took:.1f} s after SIGTERM; the task ran again on the next worker")
    TALLIES.append(tally)
    assert not tally.problems(), tally
    assert len(mails(mail_dir, customer.email)) == 1
    with app.extensions["shop"].db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(status) FROM payments")).one() == (1, "succeeded")


def test_an_idle_worker_and_beat_exit_at_once_on_sigterm(tmp_path):
    worker = start_worker(tmp_path / "idle", REMAP_SIGTERM="SIGQUIT", WORKER_SHUTDOWN_GRACE="30")
    beat = start_beat(tmp_path / "beat")
    try:
        assert _exited_within(worker, 15) < 15
        assert _exited_within(beat, 15) < 15
    finally:
        worker.stop()
        beat.stop()


def test_revoke_terminate_leaves_a_threads_worker_running_and_its_task_finishes(
        app, client, people, make_variant, mail_dir, tmp_path):
    """A thread cannot be stopped: revoke --terminate on the `orders` worker neither kills the process (its
    other tasks with it) nor loses the task."""
    customer, headers = people["customer"]
    worker = start_worker(tmp_path / "threads", pool="threads", SANDBOX_PAYMENT_LATENCY="3")
    try:
        order_id = place(client, headers, make_variant(stock=2), 1).json["id"]
        client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
        wait_for(lambda: _payment_locked(app), timeout=15, message="the task to be in its vendor call")
        with app.extensions["shop"].db.engine.connect() as conn:
            task_id = conn.execute(text("SELECT id::text FROM outbox WHERE task = 'tasks.payments.start_payment'")
                                   ).scalar_one()
        app.extensions["shop"].celery.control.revoke(task_id, terminate=True)
        wait_for(lambda: status_of(app, order_id) == "processing", timeout=30, message="the payment to finish")
        assert worker.proc.poll() is None
        wait_for(lambda: mails(mail_dir, customer.email), message="the confirmation")
        assert "cannot be terminated" in worker.log()
    finally:
        worker.stop()


def _waiting_on_locks(engine) -> int:
    with engine.connect() as conn:  # a transaction of its own: pg_stat_activity is a snapshot per transaction
        return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()")).scalar()


def test_gunicorn_finishes_a_request_in_flight_before_it_exits(app, people, make_variant, settings, tmp_path):
    customer, headers = people["customer"]
    variant = make_variant(stock=5)
    web = start_gunicorn(tmp_path, workers=1)
    engine = create_engine(settings.DATABASE_URL)
    answers = []
    try:
        with engine.connect() as lock:
            lock.execute(text("SELECT 1 FROM product_variants WHERE id = :id FOR UPDATE"), {"id": variant})
            body = {"items": [{"variantId": str(variant), "quantity": 1}], "shippingAddress": ADDRESS}
            request = threading.Thread(target=lambda: answers.append(
                requests.post(f"{web.url}{ORDERS}", json=body, headers=headers, timeout=30)))
            request.start()
            wait_for(lambda: _waiting_on_locks(engine) or answers,
                     message="the request to wait on the row lock")
            assert not answers, answers[0].text
            os.kill(web.proc.pid, signal.SIGTERM)
            wait_for(lambda: "Handling signal: term" in web.log(), message="gunicorn to start draining")
            lock.rollback()  # the request in flight goes on
        request.join(30)
        wait_for(lambda: web.proc.poll() is not None, timeout=25, message="gunicorn to exit")
    finally:
        web.stop()
        engine.dispose()
    assert [answer.status_code for answer in answers] == [201]
