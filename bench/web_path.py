"""The web half of a paid order, counted in one process: CPU, SQL statements and Redis round trips of
checkout + pay.

    python -m bench.web_path [orders, default 500]
    python -m bench.web_path --http [orders/s, default 50] [seconds, default 20]

Places and pays `orders` orders (after a warm-up) through the Flask test client, each customer's token
taken in turn, and counts what the request thread does: its CPU (`thread_time`), the process's CPU (the
outbox publisher's threads included: their rows go to a scratch virtual host nobody consumes), the SQL
statements and commits it sends to PostgreSQL and its Redis round trips. A GET /healthz (outside the API,
every hook still runs) is timed in the same loop as the in-process floor. The test client skips the HTTP
server's own work (gunicorn's parsing and writing), which `make bench-orders` includes; unlike that bench
the counts here do not move with the machine's load, and the CPU of the request thread moves far less than
a wrk run's figures. BENCH_PROFILE=<file> also profiles the measured loop with cProfile on the thread's CPU
clock and prints the top of it (with `--http`: py-spy samples gunicorn, raw stacks into <file>). Uses its
own scratch database, RabbitMQ virtual host and Redis database (BENCH_NAME, BENCH_REDIS_URL), removed or
emptied after.

`--http` serves the same app with gunicorn (gunicorn.conf.py, BENCH_WEB_WORKERS processes, the settings'
worker class) and offers it checkout + pay at a fixed rate from an asyncio client in this process (for
when wrk is not installed; no Celery worker runs, so only the web is measured): each order is due at
start + k/rate and taken on a free keep-alive connection. It prints the checkout and pay latencies (send
to last byte), how late starts fell behind the schedule, the CPU gunicorn's processes spent per order
(from /proc) and the client's own CPU per order.
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
from bench.stack import scratch_environment  # noqa: E402

os.environ.update(scratch_environment(PG, NAME, MAIL))
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

    if sys.argv[1:2] == ["--http"]:
        return over_http(float(sys.argv[2]) if len(sys.argv) > 2 else 50.0,
                         float(sys.argv[3]) if len(sys.argv) > 3 else 20.0)
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


async def _answer(reader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a Content-Length: its status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    return int(head[9:12]), await reader.readexactly(length)


def _post(path: str, token: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _offer(port: int, tokens: list[str], body: bytes, rate: float, seconds: float) -> dict:
    """Checkout + pay at `rate` orders/s for `seconds`: latencies, late starts, errors."""
    import asyncio
    import json

    idle, found = [], {"checkout": [], "pay": [], "late": [], "errors": 0}
    pay = json.dumps({"paymentMethod": "sandbox_success"}).encode()

    async def one(k: int, due: float) -> None:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        found["late"].append(time.perf_counter() - due)
        reader, writer = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
        token = tokens[k % len(tokens)]
        try:
            sent = time.perf_counter()
            writer.write(_post("/api/v1/orders", token, body))
            status, answer = await _answer(reader)
            placed = time.perf_counter()
            if status != 201:
                raise RuntimeError(f"checkout {status}")
            writer.write(_post(f"/api/v1/orders/{json.loads(answer)['id']}/pay", token, pay))
            status, _ = await _answer(reader)
            if status != 202:
                raise RuntimeError(f"pay {status}")
            found["checkout"].append(placed - sent)
            found["pay"].append(time.perf_counter() - placed)
            idle.append((reader, writer))
        except Exception:  # noqa: BLE001  (counted; the connection is dropped)
            found["errors"] += 1
            writer.close()

    start = time.perf_counter() + 0.1
    await asyncio.gather(*(one(k, start + k / rate) for k in range(int(rate * seconds))))
    for _reader, writer in idle:
        writer.close()
    return found


def over_http(rate: float, seconds: float) -> None:
    """The `--http` mode: gunicorn offered `rate` orders/s; a warm-up of 3 s first."""
    import asyncio
    import json
    import signal
    import subprocess
    import urllib.request

    from bench.stack import free_port, session_cpu
    from bootstrap import bootstrap
    from web.auth.tokens import access_token

    workers = os.environ.get("BENCH_WEB_WORKERS", "2")
    bootstrap()
    fresh_database(PG, NAME, os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    fresh_vhost(NAME)
    from web import create_app

    app, port, web = create_app(), free_port(), None
    try:
        with app.extensions["shop"].db.session() as session:
            variant, users = seed_teapot_and_customers(session, 32, "web-http")
            body = json.dumps({"items": [{"variantId": str(variant.id), "quantity": 1}],
                               "shippingAddress": ADDRESS}).encode()
            with app.app_context():
                tokens = [access_token(u.id, "customer", mfa=False, session_id=uuid.uuid4()) for u in users]
        app.extensions["shop"].close()
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                               env={**os.environ, "PORT": str(port), "WEB_CONCURRENCY": workers,
                                    "DATABASE_POOL_SIZE": "4"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310  (loopback)
                break
            except OSError:
                time.sleep(0.2)
        asyncio.run(_offer(port, tokens, body, rate, 3))  # warm-up: connections, caches, the publisher threads
        web_cpu, own_cpu, load = session_cpu(web.pid), time.process_time(), os.getloadavg()[0]
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses",
                                "--nonblocking", "-r", "100", "-d", f"{seconds:.0f}", "-f", "raw", "-o", PROFILE,
                                "-p", str(web.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) \
            if PROFILE else None
        found = asyncio.run(_offer(port, tokens, body, rate, seconds))
        if spy is not None:
            spy.wait()
        web_cpu, own_cpu = session_cpu(web.pid) - web_cpu, time.process_time() - own_cpu
    finally:
        if web is not None:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait()
        drop_scratch(PG, NAME, os.environ["REDIS_URL"])
        shutil.rmtree(MAIL, ignore_errors=True)
    done = max(len(found["checkout"]), 1)

    def ms(values: list[float], p: float) -> str:
        ordered = sorted(values)
        return f"{ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000:.1f}" if ordered else "-"
    print(f"\nWeb over HTTP ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): {rate:g} orders/s offered "
          f"for {seconds:g} s, gunicorn {workers} x {os.environ.get('WEB_WORKER_CLASS', 'settings default')}, "
          f"{os.cpu_count()} CPUs, load average (1 min) {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print("| orders done | errors | checkout p50 / p95 / p99 | pay p50 / p95 | late start p95 "
          "| web CPU per order | client CPU per order |\n|---:|---:|---|---|---:|---:|---:|")
    print(f"| {len(found['checkout'])} | {found['errors']} | {ms(found['checkout'], 50)} / "
          f"{ms(found['checkout'], 95)} / {ms(found['checkout'], 99)} ms | {ms(found['pay'], 50)} / "
          f"{ms(found['pay'], 95)} ms | {ms(found['late'], 95)} ms | {web_cpu * 1000 / done:.1f} ms | "
          f"{own_cpu * 1000 / done:.1f} ms |")


if __name__ == "__main__":
    main()
