"""Checkout-and-pay benchmark: gunicorn, a worker and the sandbox gateway, driven for a fixed time.

    make bench-orders [BENCH_SECONDS=20 BENCH_CLIENTS=8]

Uses its own scratch database, RabbitMQ virtual host and Redis database.
Prints orders per second end to end (paid and confirmation email written),
checkout latency percentiles, creation-to-email percentiles, and a bare
Flask endpoint's throughput measured in the same run for the ratio.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_orders")
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WEB_WORKERS = os.environ.get("BENCH_WEB_WORKERS", "2")
# Enough clients to keep every sync gunicorn worker busy with one request queued behind it; many more
# would only measure time spent waiting in the listen queue.
CLIENTS = int(os.environ.get("BENCH_CLIENTS", str(4 * int(WEB_WORKERS))))
# The tasks mostly wait on PostgreSQL, Redis and RabbitMQ, so more processes than cores keep the CPUs busy.
WORKER_PROCESSES = os.environ.get("BENCH_WORKER_PROCESSES", "4")
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
MAIL = Path(tempfile.mkdtemp(prefix="bench-mail-"))
ENV = {
    "APP_ENV": "development", "LOG_LEVEL": "WARNING", "DATABASE_URL": f"{PG}/{NAME}",
    "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{NAME}",
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
    "EMAIL_OUTBOX_DIR": str(MAIL), "FULFILLMENT_EMAIL": "", "PAYMENTS_PROVIDER": "sandbox",
    "WEB_CONCURRENCY": WEB_WORKERS, "DATABASE_POOL_SIZE": "4",
    # Each client is one customer ordering far faster than a person: the per-user budget (still checked in
    # Redis on every request) must not be what limits the run.
    "RATE_LIMIT_DEFAULT": "1000000 per minute",
}
os.environ.update(ENV)

import requests  # noqa: E402

from bench.stack import free_port, fresh_database, fresh_vhost, seed_teapot_and_customers  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402


def prepare_services() -> None:
    fresh_database(PG, NAME, ENV["DATABASE_URL"], ENV["REDIS_URL"])
    fresh_vhost(NAME)


def seed(clients: int) -> tuple[str, list[dict]]:
    """One variant with plenty of stock, and a customer (with auth headers) per client."""
    from web import create_app
    from web.auth.tokens import access_token

    app = create_app()
    with app.extensions["shop"].db.session() as session:
        variant, users = seed_teapot_and_customers(session, clients, "bench")
        variant_id = str(variant.id)
        with app.app_context():
            headers = [{"Authorization": "Bearer " + access_token(u.id, "customer", mfa=False, session_id=uuid.uuid4())}
                       for u in users]
    app.extensions["shop"].db.dispose()
    return variant_id, headers


def start(command: list[str], log: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def drive(seconds: float, clients: int, work) -> list:
    """Run `work(n, session)` in `clients` threads until `seconds` pass; collect what it returns."""
    results, lock, stop = [], threading.Lock(), time.monotonic() + seconds

    def loop(n):
        session = requests.Session()
        while time.monotonic() < stop:
            found = work(n, session)
            with lock:
                results.append(found)

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def measure_bare(port: int, logs: Path) -> float:
    proc = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--chdir", str(ROOT / "bench"),
                  "bare:app"], logs / "bare.log", PORT=str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/bare")
        seconds = min(SECONDS, 10)
        done = drive(seconds, CLIENTS, lambda n, s: s.get(f"http://127.0.0.1:{port}/bare").status_code)
        return len(done) / seconds
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def checkout_and_pay(base: str, variant_id: str, headers: list[dict]):
    body = {"items": [{"variantId": variant_id, "quantity": 1}],
            "shippingAddress": {"firstName": "B", "lastName": "M", "line1": "1 Road", "city": "Paris",
                                "postalCode": "75001", "country": "FR"}}

    def work(n, session):
        started = time.perf_counter()
        created = session.post(f"{base}/api/v1/orders", json=body, headers=headers[n])
        latency = time.perf_counter() - started
        if created.status_code != 201:
            return ("error", created.status_code, latency)
        paid = session.post(f"{base}/api/v1/orders/{created.json()['id']}/pay",
                            json={"paymentMethod": "sandbox_success"}, headers=headers[n])
        return ("ok" if paid.status_code == 202 else "error", paid.status_code, latency)
    return work


def email_delays(expected: int, deadline: float) -> tuple[list[float], float]:
    """Seconds from order creation to its confirmation .eml, once every paid order has one (or time is up)."""
    engine = create_engine(ENV["DATABASE_URL"])
    query = text("SELECT m.id::text, o.created_at FROM email_messages m JOIN orders o "
                 "ON o.id = (m.context->>'order_id')::uuid WHERE m.template = 'order_confirmation'")
    while True:
        files = {p.stem.split("-", 1)[1]: p.stat().st_mtime for p in MAIL.glob("*.eml")}
        if len(files) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    with engine.connect() as conn:
        created = dict(conn.execute(query).all())
    engine.dispose()
    delays = [files[mid] - created[mid].replace(tzinfo=UTC).timestamp() for mid in created if mid in files]
    if len(delays) < expected:
        print(f"note: {len(files)} emails written, {len(created)} confirmations queued, {expected} orders paid")
    last = max(files.values()) if files else time.time()
    return delays, last


def wait_worker(timeout: float = 60) -> None:
    """Until the worker answers a ping, so its start-up is not counted as email latency."""
    from bootstrap import bootstrap

    app = bootstrap().celery
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1):
            return
    raise RuntimeError("the worker did not start")


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    prepare_services()
    variant_id, headers = seed(CLIENTS)
    bare_rps = measure_bare(free_port(), logs)
    port = free_port()
    web = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], logs / "web.log",
                PORT=str(port))
    worker = start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q",
                    "payments,emails,shipping,search,maintenance", "-c", WORKER_PROCESSES,
                    # Tasks of these queues are short: a few reserved messages per process hide the broker
                    # round trip between two tasks (acks stay late, so a lost worker's messages come back).
                    "--prefetch-multiplier", "4", "--without-mingle",
                    "--without-gossip", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "WARNING"],
                   logs / "worker.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        wait_worker()
        started_wall = time.time()
        results = drive(SECONDS, CLIENTS, checkout_and_pay(base, variant_id, headers))
        ok = [r for r in results if r[0] == "ok"]
        delays, last_email = email_delays(len(ok), time.monotonic() + 60)
    finally:
        for proc in (web, worker):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (web, worker):
            proc.wait()
    latencies = [r[2] * 1000 for r in results]
    checkout_rps = len(results) / SECONDS
    paid_rps = len(delays) / max(SECONDS, last_email - started_wall)
    print(f"\nOrders benchmark: {SECONDS:.0f} s, {CLIENTS} client threads, "
          f"{ENV['WEB_CONCURRENCY']} gunicorn workers, 1 worker ({WORKER_PROCESSES} processes), {os.cpu_count()} CPUs, "
          f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}; logs in {logs}")
    print("| what | figure |\n|---|---|")
    print(f"| bare Flask endpoint | {bare_rps:,.0f} req/s |")
    print(f"| checkout + pay requests | {checkout_rps:,.1f} orders/s ({checkout_rps / bare_rps:.1%} of bare) |")
    print(f"| paid orders end to end (confirmation email written) | {paid_rps:,.1f} orders/s "
          f"({len(delays)} of {len(ok)} within the drain window) |")
    print(f"| errors | {len(results) - len(ok)} |")
    print(f"| checkout latency p50 / p95 / p99 | {percentile(latencies, 50):.0f} / "
          f"{percentile(latencies, 95):.0f} / {percentile(latencies, 99):.0f} ms |")
    print(f"| creation to email p50 / p95 / p99 | {percentile(delays, 50):.2f} / {percentile(delays, 95):.2f} / "
          f"{percentile(delays, 99):.2f} s |")


if __name__ == "__main__":
    main()
