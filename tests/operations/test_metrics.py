"""Metrics: task counters and runtimes summed across a real worker's pool processes, and what the web's
/metrics reads at scrape time (queue depths and ages, dead letters, imports, security events)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.conftest import start_worker
from tests.helpers import wait_for


def samples(body: str) -> dict:
    """{(name, frozenset(labels)): value} of a Prometheus text page."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, frozenset(labels.items())))


def scrape_until(fetch, ready, message: str, timeout: float = 60) -> dict:
    """Scrape with `fetch` until `ready(samples)`; the last samples."""
    last = {}

    def check():
        last.update(fetch())
        return ready(last)
    wait_for(check, timeout=timeout, interval=0.3, message=message)
    return last


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["prefork", "threads"])
def metered_worker(tmp_path, request):
    """A worker serving its metrics, with each of the Procfile's pools (processes, and the `orders` worker's
    threads)."""
    port = free_port()
    process = start_worker(tmp_path, pool=request.param, WORKER_METRICS_PORT=str(port),
                           WORKER_METRICS_DIR=str(tmp_path / "samples"))
    yield port, tmp_path / "samples"
    process.stop()


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return samples(response.read().decode())


def test_worker_counts_started_succeeded_failed_retried_and_times_each_task(metered_worker, app, client):
    port, folder = metered_worker
    celery = app.extensions["shop"].celery
    for _ in range(4):
        celery.send_task("tasks.maintenance.sweep_outbox")
    for email in ("ok@example.com", "no@reject.invalid", "later@transient.invalid"):
        response = client.post("/api/v1/auth/register", json={
            "email": email, "password": "Passw0rd!", "firstName": "Ada", "lastName": "Lovelace"})
        assert response.status_code == 201
    sweep, send = "tasks.maintenance.sweep_outbox", "tasks.emails.send_email"
    # EMAIL_MAX_RETRIES=3: the transient one runs 4 times, retries 3 times, then fails for good.
    found = scrape_until(lambda: scrape(port), lambda s: value(s, "shop_task_failed_total", task=send) == 2,
                         "both refused emails to fail for good")
    assert value(found, "shop_task_succeeded_total", task=sweep) == 4
    assert value(found, "shop_task_started_total", task=send) == 1 + 1 + 4
    assert value(found, "shop_task_succeeded_total", task=send) == 1
    assert value(found, "shop_task_retried_total", task=send) == 3
    assert value(found, "shop_task_runtime_seconds_count", task=send) == 6
    assert value(found, "shop_task_runtime_seconds_bucket", task=sweep, le="+Inf") == 4
    assert len(list(folder.glob("*/*.db"))) >= 2  # the pool's processes each wrote samples; the scrape summed them


def web_metrics(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return samples(response.get_data(as_text=True))


def test_queue_depth_and_oldest_age_without_touching_the_messages(app, client, settings):
    celery = app.extensions["shop"].celery
    for _ in range(3):
        celery.send_task("tasks.search.index_products", kwargs={"product_ids": []})
    dead_since = time.time() - 100
    with Connection(settings.CELERY_BROKER_URL) as conn:
        conn.Producer().publish(json.dumps([[], {}, {}]), exchange="shop.dead", routing_key="payments",
                                headers={"id": "t-9", "task": "tasks.payments.x", "x-death": [
                                    {"count": 1, "reason": "rejected", "queue": "payments", "time": int(dead_since)}]},
                                content_type="application/json", content_encoding="utf-8")
    first = web_metrics(client)
    assert value(first, "shop_queue_messages", queue="search") == 3
    assert value(first, "shop_queue_messages", queue="payments.dead") == 1
    assert value(first, "shop_queue_messages", queue="emails") == 0
    assert value(first, "shop_queue_oldest_message_age_seconds", queue="emails") == 0
    assert 99 <= value(first, "shop_queue_oldest_message_age_seconds", queue="payments.dead") < 130
    # Seen waiting now; a later scrape finds them older (and still there: nothing was read off the queue).
    later = scrape_until(lambda: web_metrics(client),
                         lambda s: value(s, "shop_queue_oldest_message_age_seconds", queue="search") >= 1,
                         "the search queue's messages to age", timeout=10)
    assert value(later, "shop_queue_messages", queue="search") == 3
    with Connection(settings.CELERY_BROKER_URL) as conn:
        _, depth, _ = conn.default_channel.queue_declare("search", passive=True)
        message = conn.default_channel.basic_get("search", no_ack=True)
    assert depth == 3 and (message.headers or {}).get("x-delivery-count", 0) == 0  # never delivered before


def test_imports_and_security_events(app, client):
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO import_jobs (id, inbox, source_key, filename, status, rows_imported, rows_failed, "
            "started_at, finished_at) VALUES (gen_random_uuid(), 'upload', 'k1', 'a.csv', 'completed', 900, 12, "
            "now() - interval '45 seconds', now()), (gen_random_uuid(), 'upload', 'k2', 'b.csv', 'running', 100, "
            "0, now(), NULL)"))
    before = web_metrics(client)
    for _ in range(2):
        client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"})
    found = web_metrics(client)
    assert value(found, "shop_import_rows_total", outcome="imported") == 1000
    assert value(found, "shop_import_rows_total", outcome="failed") == 12
    assert value(found, "shop_import_jobs", status="running") == 1
    assert value(found, "shop_import_job_duration_seconds_bucket", le="30.0") == 0
    assert value(found, "shop_import_job_duration_seconds_bucket", le="60.0") == 1
    failed_before = value(before, "shop_security_events_total", kind="login_failed") or 0
    assert value(found, "shop_security_events_total", kind="login_failed") == failed_before + 2
