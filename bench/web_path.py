"""The web half of a paid order, counted in one process: CPU, SQL statements and Redis round trips of
checkout + pay.

    python -m bench.web_path [orders, default 500]

Places and pays `orders` orders (after a warm-up) through the Flask test client, each customer's token
taken in turn, and counts what the request thread does: its CPU (`thread_time`), the process's CPU (the
outbox publisher's threads included: their rows go to a scratch virtual host nobody consumes), the SQL
statements and commits it sends to PostgreSQL and its Redis round trips. A GET /healthz (outside the API,
every hook still runs) is timed in the same loop as the in-process floor. The test client skips the HTTP
server's own work (gunicorn's parsing and writing), which `make bench-orders` includes; unlike that bench
the counts here do not move with the machine's load, and the CPU of the request thread moves far less than
a wrk run's figures. BENCH_PROFILE=<file> also profiles the measured loop with cProfile on the thread's CPU
clock and prints the top of it. Uses its own scratch database, RabbitMQ virtual host and Redis database
(BENCH_NAME, BENCH_REDIS_URL), removed or emptied after.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_web_path")
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
MAIL = Path(tempfile.mkdtemp(prefix="bench-mail-"))
PROFILE = os.environ.get("BENCH_PROFILE")
from bench.stack import in_process_env  # noqa: E402

os.environ.update(in_process_env(PG, NAME, MAIL))
WARM_UP = 50
CUSTOMERS = 8

from redis.connection import Connection  # noqa: E402
from sqlalchemy import event  # noqa: E402

from bench.stack import drop_scratch, fresh_database, fresh_vhost, seed_teapot_and_customers  # noqa: E402

ADDRESS = {"firstName": "B", "lastName": "M", "line1": "1 Road", "city": "Paris", "postalCode": "75001",
           "country": "FR"}


class Counts:
    """What the measuring thread sends: SQL statements, commits, Redis round trips."""

    def __init__(self, engine):
        self.me, self.sql, self.commits, self.redis = threading.get_ident(), 0, 0, 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        counts, send = self, Connection.send_packed_command

        def counted_send(connection, command, check_health=True):
            if threading.get_ident() == counts.me:
                counts.redis += 1
            return send(connection, command, check_health)
        Connection.send_packed_command = counted_send

    def _statement(self, *_):
        if threading.get_ident() == self.me:
            self.sql += 1

    def _commit(self, *_):
        if threading.get_ident() == self.me:
            self.commits += 1

    def snapshot(self) -> tuple[int, int, int]:
        return self.sql, self.commits, self.redis


def main() -> None:
    from bootstrap import bootstrap

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    bootstrap()  # the migrations encrypt with the process's PII key ring, which the composition root configures
    fresh_database(PG, NAME, os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    fresh_vhost(NAME)
    from web import create_app
    from web.auth.tokens import access_token

    app = create_app()
    shop = app.extensions["shop"]
    try:
        with shop.db.session() as session:
            variant, users = seed_teapot_and_customers(session, CUSTOMERS, "web-path")
            body = {"items": [{"variantId": str(variant.id), "quantity": 1}], "shippingAddress": ADDRESS}
            with app.app_context():
                headers = [{"Authorization": "Bearer " + access_token(u.id, "customer", mfa=False,
                                                                      session_id=uuid.uuid4())} for u in users]
        client, pay = app.test_client(), {"paymentMethod": "sandbox_success"}
        counts = Counts(shop.db.engine)
        samples = {"checkout": [], "pay": [], "healthz": []}

        def one(n: int, keep: bool) -> None:
            who = headers[n % CUSTOMERS]
            cpu = time.thread_time()
            placed = client.post("/api/v1/orders", json=body, headers=who)
            middle = time.thread_time()
            paid = client.post(f"/api/v1/orders/{placed.json['id']}/pay", json=pay, headers=who)
            end = time.thread_time()
            client.get("/healthz")
            if placed.status_code != 201 or paid.status_code != 202:
                raise RuntimeError(f"checkout {placed.status_code} / pay {paid.status_code}: {paid.json}")
            if keep:
                samples["checkout"].append(middle - cpu)
                samples["pay"].append(end - middle)
                samples["healthz"].append(time.thread_time() - end)

        for n in range(WARM_UP):
            one(n, False)
        profiler = None
        if PROFILE:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)
        before, started, thread_cpu, process_cpu = counts.snapshot(), time.perf_counter(), time.thread_time(), \
            time.process_time()
        if profiler:
            profiler.enable()
        for n in range(count):
            one(n, True)
        if profiler:
            profiler.disable()
        wall, thread_cpu = time.perf_counter() - started, time.thread_time() - thread_cpu
        process_cpu = time.process_time() - process_cpu
        sql, commits, trips = (after - first for after, first in zip(counts.snapshot(), before, strict=True))
    finally:
        shop.relay.close(10)
        shop.close()
        drop_scratch(PG, NAME, os.environ["REDIS_URL"])
        shutil.rmtree(MAIL, ignore_errors=True)
    health = sum(samples["healthz"]) * 1000 / count
    print(f"\nWeb path ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), {count} orders (checkout + pay "
          f"+ one GET /healthz each) after {WARM_UP} of warm-up, {os.cpu_count()} CPUs, load average (1 min) "
          f"{os.getloadavg()[0]:.1f}; {wall:.1f} s")
    print("| per order | request thread CPU | process CPU (publisher threads too) | SQL statements | commits "
          "| Redis round trips |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| checkout + pay | {thread_cpu * 1000 / count - health:.2f} ms | "
          f"{process_cpu * 1000 / count - health:.2f} ms | {sql / count:.2f} | {commits / count:.2f} | "
          f"{trips / count:.2f} |")
    print("| request | median thread CPU | p90 |\n|---|---:|---:|")
    for name, values in samples.items():
        p90 = sorted(values)[int(0.9 * len(values))]
        print(f"| {name} | {statistics.median(values) * 1e3:.3f} ms | {p90 * 1e3:.3f} ms |")
    if profiler:
        import pstats

        profiler.dump_stats(PROFILE)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()
