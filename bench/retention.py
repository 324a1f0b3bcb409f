"""Retention benchmark: purge 1M orders past their 7 years while checkout is measured beside it.

    make bench-retention                       # or: .venv/bin/python -m bench.retention --help

Builds `shop_bench_retention` (never the test or development database):
BENCH_ORDERS expired orders, each with 2 items, 5 events, a payment, a
refund, a return, a shipment and two address snapshots (15 rows an order).
Serves the app under gunicorn (2 sync workers) and drives POST /api/v1/orders
with wrk: first idle, then in back-to-back windows while `flask retention
purge --only orders` runs, every other window with the purge paused
(SIGSTOP), so the idle baseline is taken under the same background load. Prints the purge time and rate and checkout
latency idle and during the purge, with the ratio to the idle figure
measured in the same run (the targets: 1M orders in < 5 minutes, checkout
p95 ≤ 2 × idle). Checkout's tasks go to a scratch RabbitMQ virtual host
that no worker consumes; Redis database 13 (BENCH_REDIS_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import catalog  # noqa: E402  (its gunicorn and wrk drivers)
from bench.old_orders import insert_old_orders  # noqa: E402
from settings import Settings  # noqa: E402

NAME = "shop_bench_retention"
catalog.DATABASE = NAME
catalog.REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
BATCH = 50_000


def prepare(orders: int) -> tuple[str, str]:
    """A fresh database with `orders` expired orders, a variant to buy and a customer's token."""
    catalog.recreate_database()
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", NAME], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", NAME], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", NAME, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True)
    engine = create_engine(catalog.scratch_url())
    with engine.begin() as conn:
        user_id = conn.execute(text(
            "INSERT INTO users (email, password_hash, first_name, last_name) "
            "VALUES ('bench@example.com', '!', 'B', 'M') RETURNING id")).scalar()
        product = conn.execute(text("INSERT INTO products (handle, name) VALUES ('teapot', 'Teapot') "
                                    "RETURNING id")).scalar()
        variant = conn.execute(text("INSERT INTO product_variants (product_id, sku, price, currency, stock) "
                                    "VALUES (:p, 'BENCH-1', 10, 'EUR', 1000000000) RETURNING id"),
                               {"p": product}).scalar()
    started = time.monotonic()
    for done in range(0, orders, BATCH):
        with engine.begin() as conn:
            insert_old_orders(conn, user_id, min(BATCH, orders - done), 2600)
        print(f"  {done + min(BATCH, orders - done):,} expired orders written", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    print(f"  seeded in {time.monotonic() - started:.0f} s", flush=True)
    return str(variant), _token(user_id)


def _token(user_id) -> str:
    from flask_jwt_extended import create_access_token

    from web import create_app

    app = create_app()
    with app.app_context():
        # An access token names its session (sid): without one the app refuses it (web/auth/guard.py).
        token = create_access_token(identity=str(user_id), additional_claims={
            "role": "customer", "mfa": False, "sid": str(uuid.uuid4())})
    app.extensions["shop"].db.dispose()
    return f"Bearer {token}"


def checkout_files(work: Path, variant: str) -> tuple[Path, Path]:
    (work / "paths").write_text("/api/v1/orders\n")
    (work / "body.json").write_text(json.dumps({
        "items": [{"variantId": variant, "quantity": 1}],
        "shippingAddress": {"firstName": "B", "lastName": "M", "line1": "1 Road", "city": "Paris",
                            "postalCode": "75001", "country": "FR"}}))
    return work / "paths", work / "body.json"


def checkout(url: str, files: tuple[Path, Path], token: str, seconds: int, connections: int) -> dict:
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", str(ROOT / "bench" / "wrk.lua"),
               url, "--", str(files[0]), token, str(files[1])]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def purge_during(url, files, token, seconds, connections, log: Path) -> tuple[float, list, str]:
    """Run the purge, measuring checkout in windows that alternate between purge running and purge paused.

    The machine is shared, so its background load drifts over minutes: an idle window between every two
    purge windows (the purge stopped with SIGSTOP) gives a baseline taken under the same drift.
    Returns the purge's running time (paused time left out), the windows as (running, result), its output.
    """
    env = {**os.environ, "DATABASE_URL": catalog.scratch_url(), "REDIS_URL": catalog.REDIS_URL}
    started, ended, paused = time.monotonic(), [], 0.0
    with log.open("wb") as out:
        purge = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "retention", "purge", "--only",
                                  "orders"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        waiter = threading.Thread(target=lambda: ended.append(purge.wait() is not None and time.monotonic()))
        waiter.start()
        windows = []
        while not ended:
            windows.append((True, checkout(url, files, token, seconds, connections)))
            if ended:
                break
            stopped = time.monotonic()
            purge.send_signal(signal.SIGSTOP)
            windows.append((False, checkout(url, files, token, seconds, connections)))
            purge.send_signal(signal.SIGCONT)
            paused += time.monotonic() - stopped
        waiter.join()
    return ended[0] - started - paused, windows, log.read_text().strip()


def row(name: str, result: dict, idle: dict) -> str:
    return (f"| {name} | {result['rps']:.1f} | {result['p50']:.1f} | {result['p95']:.1f} | {result['p99']:.1f} | "
            f"{result['p95'] / idle['p95']:.2f} | {result['errors']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=int(os.environ.get("BENCH_ORDERS", 1_000_000)))
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 20)),
                        help="length of each wrk window")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    os.environ.update({"DATABASE_URL": catalog.scratch_url(), "REDIS_URL": catalog.REDIS_URL,
                       "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{NAME}", "LOG_LEVEL": "WARNING"})
    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    print(f"seeding {args.orders:,} expired orders", flush=True)
    variant, token = prepare(args.orders)
    files = checkout_files(work, variant)
    server, url = catalog.serve("wsgi:app", 2, work / "gunicorn.log")
    try:
        checkout(url, files, token, 5, args.connections)  # warm-up: connections, caches
        idle = checkout(url, files, token, args.seconds, args.connections)
        elapsed, windows, said = purge_during(url, files, token, args.seconds, args.connections, work / "purge.log")
        after = checkout(url, files, token, args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", NAME], capture_output=True)
    running = [result for busy, result in windows if busy]
    between = [result for busy, result in windows if not busy] or [idle]
    worst = max(running, key=lambda w: w["p95"])
    baseline = statistics.median(w["p95"] for w in between)
    settings = Settings.from_env()
    load = os.getloadavg()
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average before/after "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; wrk 1 thread, {args.connections} connections, "
          f"{args.seconds} s windows; gunicorn 2 sync workers; RETENTION_CHUNK {settings.RETENTION_CHUNK}, "
          f"RETENTION_PAUSE_RATIO {settings.RETENTION_PAUSE_RATIO}")
    print(f"purge: {said} in {elapsed:.1f} s = {args.orders / elapsed:,.0f} orders/s "
          f"({args.orders * 15 / elapsed:,.0f} rows/s); target 1M in < 300 s: "
          f"{'met' if elapsed * 1_000_000 / args.orders < 300 else 'not met'}")
    print("\n| checkout (POST /api/v1/orders) | req/s | p50 ms | p95 ms | p99 ms | p95 / idle p95 | errors |")
    print("|---|---|---|---|---|---|---|")
    print(row("idle, before the purge", idle, idle))
    for number, (busy, window) in enumerate(windows, 1):
        print(row(f"window {number}: purge {'running' if busy else 'paused (idle)'}", window, idle))
    print(row("idle, after the purge", after, idle))
    median = statistics.median(w["p95"] for w in running)
    print(f"\nidle p95 (median of the paused windows) {baseline:.1f} ms; with the purge running: median "
          f"{median:.1f} ms = {median / baseline:.2f} ×, worst {worst['p95']:.1f} ms = "
          f"{worst['p95'] / baseline:.2f} ×; "
          f"target ≤ 2 ×: {'met' if worst['p95'] <= 2 * baseline else 'not met'}")
    print("(the ratio column is to the idle window before the purge)")


if __name__ == "__main__":
    main()
