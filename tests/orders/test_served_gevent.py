"""The app under gunicorn's gevent worker class (WEB_WORKER_CLASS=gevent): one thread per process, a greenlet
per connection. psycopg2 waits through gevent's hub (psycogreen, patched in gunicorn.conf.py's `post_fork`),
Redis and RabbitMQ through the patched sockets, and the outbox publisher's threads are greenlets: a request
waiting on any of them must leave the process free for the others."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import text

from tests.helpers import wait_for, wait_for_mail
from tests.orders.conftest import ADDRESS, ORDERS, start_gunicorn


def rows(app, sql, **params):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_a_checkout_served_by_gevent_is_published_and_consumed(order_worker, app, people, make_variant, mail_dir,
                                                                 tmp_path):
    customer, headers = people["customer"]
    variant = make_variant(stock=5, price="20.00")
    server = start_gunicorn(tmp_path, workers=1, worker_class="gevent")
    body = {"items": [{"variantId": str(variant), "quantity": 2}], "shippingAddress": ADDRESS}
    try:
        with requests.Session() as http:
            created = http.post(server.url + ORDERS, json=body, headers=headers, timeout=30)
            assert created.status_code == 201, created.text
            order_id = created.json()["id"]
            paid = http.post(f"{server.url}{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"},
                             headers=headers, timeout=30)
            assert paid.status_code == 202, paid.text
            # The payment task reaches the worker only through the web process's outbox publisher (no sweep runs).
            wait_for(lambda: rows(app, "SELECT status FROM payments") == [("succeeded",)], 30, message="the payment")
            assert "is confirmed" in wait_for_mail(mail_dir, customer.email)["Subject"]
            listed = http.get(f"{server.url}{ORDERS}?limit=10", headers=headers, timeout=30)
            assert [order["id"] for order in listed.json()["items"]] == [order_id]
    finally:
        server.stop()
    assert "Using worker: gevent" in (tmp_path / "gunicorn.log").read_text()


def test_requests_waiting_on_postgresql_leave_the_gevent_process_free(app, people, make_variant, tmp_path,
                                                                       monkeypatch):
    _, headers = people["customer"]
    variant = make_variant(stock=100)
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")  # the worker's JSON access lines reach the log as written
    server = start_gunicorn(tmp_path, workers=1, worker_class="gevent")  # one process, one thread
    body = {"items": [{"variantId": str(variant), "quantity": 1}], "shippingAddress": ADDRESS}

    def checkout(n: int) -> requests.Response:
        return requests.post(server.url + ORDERS, json=body, headers={**headers, "X-Request-ID": f"slow-{n}"},
                             timeout=60)

    def waiting_on_the_lock() -> int:
        return rows(app, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND wait_event_type = 'Lock'")[0][0]

    try:
        with app.extensions["shop"].db.engine.connect() as holder, ThreadPoolExecutor(6) as pool:
            # Holding the variant's row makes every checkout of it wait inside PostgreSQL until we let go.
            holder.execute(text("SELECT 1 FROM product_variants WHERE id = :id FOR UPDATE"), {"id": variant})
            slow = [pool.submit(checkout, n) for n in range(6)]
            wait_for(lambda: waiting_on_the_lock() == 6, 20, message="six checkouts waiting in PostgreSQL at once")
            started = time.monotonic()
            for _ in range(5):  # the same process still answers reads that use the database, Redis and the limiter
                listed = requests.get(f"{server.url}{ORDERS}?limit=5", headers=headers, timeout=10)
                assert listed.status_code == 200, listed.text
                assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
            assert time.monotonic() - started < 5
            assert not any(future.done() for future in slow)
            holder.rollback()
            answers = [future.result(timeout=60) for future in slow]
    finally:
        server.stop()
    assert [answer.status_code for answer in answers] == [201] * 6
    # Each greenlet kept its own request context while the others ran: its id, its answer, its access line.
    assert [answer.headers["X-Request-ID"] for answer in answers] == [f"slow-{n}" for n in range(6)]
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Using worker: gevent" in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = {entry["request_id"]: entry for entry in lines if entry.get("logger") == "web.access"}
    for n in range(6):
        assert (access[f"slow-{n}"]["path"], access[f"slow-{n}"]["status"]) == (ORDERS, 201)
        assert access[f"slow-{n}"]["duration_ms"] > 0


def test_a_silent_database_fails_within_the_connect_timeout_under_gevent(tmp_path, monkeypatch):
    # libpq ignores connect_timeout for the non-blocking connections psycogreen makes: gunicorn.conf.py's
    # wait callback keeps it, or this request would wait for as long as TCP keeps the connection.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel does) and never answers
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{silent.getsockname()[1]}/shop")
    server = start_gunicorn(tmp_path, workers=1, worker_class="gevent")
    try:
        assert requests.get(server.url + "/healthz", timeout=60).status_code == 200  # the app is loaded
        started = time.monotonic()
        ready = requests.get(server.url + "/readyz", timeout=30)
        waited = time.monotonic() - started
        alive = requests.get(server.url + "/healthz", timeout=5)
    finally:
        server.stop()
        silent.close()
    assert ready.status_code == 503 and "timeout expired" in ready.json()["errors"]["postgresql"], ready.text
    assert waited < 5 and alive.status_code == 200  # SERVICE_TIMEOUT: 2 s
