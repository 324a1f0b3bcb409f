"""Registration latency and registration-to-email delay, publishing inline (baseline) or in the background.

    make bench-publisher [BENCH_SECONDS=20 BENCH_CLIENTS=4]   (python -m bench.publisher)

For each publisher mode (OUTBOX_PUBLISHER=inline, the old synchronous publish
after commit, then background) it starts gunicorn (2 workers), a worker and
beat, and drives registrations for BENCH_SECONDS three times: on a quiet disk;
while a `dd` writer (1 GiB files, O_DIRECT, fsync, in a loop) keeps the disk
busy on the filesystem that holds RabbitMQ's and PostgreSQL's data; and with
every frame from the broker to the web held back BENCH_CONFIRM_DELAY seconds
(default 2) by a loopback proxy, which is how quorum queues on a saturated
disk answered (confirms over 2 s) when this machine's disk does not slow them.
The web always reaches the broker through that proxy; the worker and beat
directly. It prints
registration p50/p95 and creation->email p50/p95 (the verification .eml
written by the sandbox provider) per mode and disk. Uses its own scratch
database and RabbitMQ virtual host (both deleted at the end) and Redis database.
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
os.environ.setdefault("BENCH_NAME", "shop_bench_publisher")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")

from bench.orders import ENV, MAIL, NAME, PG, SECONDS, percentile, start, wait_http  # noqa: E402
from bench.stack import free_port, fresh_database, fresh_vhost, rabbitmqctl  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from tests.faults.proxy import StallingProxy  # noqa: E402

os.environ.update({"RATE_LIMIT_AUTH": "1000000 per minute", "LOG_LEVEL": "WARNING"})
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
DD_DIR = os.environ.get("BENCH_DD_DIR") or tempfile.gettempdir()  # same disk as the data, here
MODES = ("inline", "background")
CONFIRM_DELAY = float(os.environ.get("BENCH_CONFIRM_DELAY", "2"))
DISKS = ("quiet", "busy", f"confirms +{CONFIRM_DELAY:g} s")


def drive(seconds: float, clients: int, work) -> list:
    """Run `work(n, session)` in `clients` threads until `seconds` pass; collect what it returns.

    (The orders bench drives wrk now; registration, with a fresh email per request, is driven from here.)
    """
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


def register(base: str, phase: str):
    def work(n, session):
        email = f"{phase}-{n}-{uuid.uuid4().hex[:8]}@example.com"
        started = time.perf_counter()
        answer = session.post(f"{base}/api/v1/auth/register", json={
            "email": email, "password": "Passw0rd!", "firstName": "B", "lastName": "M"})
        return answer.status_code, time.perf_counter() - started
    return work


class DiskWriter:
    """`dd` writing 1 GiB files with O_DIRECT and a final fsync, one after another, until stopped."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="bench-dd-", dir=DD_DIR)) / "fill"
        self.proc = None

    def __enter__(self):
        script = (f"while true; do dd if=/dev/zero of={self.path} bs=4M count=256 oflag=direct conv=fsync "
                  f"status=none; rm -f {self.path}; done")
        self.proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
        time.sleep(2)  # let the writer fill the device queue before measuring
        return self

    def __exit__(self, *exc):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait()
        self.path.unlink(missing_ok=True)
        self.path.parent.rmdir()


def email_delays(engine, since, until, expected: int) -> list[float]:
    """Seconds from each verification email's row to its .eml file, for rows written in [since, until)."""
    query = text("SELECT id::text, created_at FROM email_messages WHERE template = 'verify_email' "
                 "AND created_at >= :since AND created_at < :until")
    deadline = time.monotonic() + 90
    while True:
        with engine.connect() as conn:
            created = dict(conn.execute(query, {"since": since, "until": until}).all())
        files = {p.stem.split("-", 1)[1]: p.stat().st_mtime for p in MAIL.glob("*.eml")}
        done = [mid for mid in created if mid in files]
        if len(done) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if len(done) < expected:
        print(f"note: {len(done)} of {expected} verification emails written within 90 s")
    return [files[mid] - created[mid].replace(tzinfo=UTC).timestamp() for mid in done]


def db_now(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT now() AT TIME ZONE 'UTC'")).scalar()


def run_mode(mode: str, engine, logs: Path) -> dict:
    port = free_port()
    proxy = StallingProxy(5672)
    env = {"OUTBOX_PUBLISHER": mode, "PORT": str(port)}
    web = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], logs / f"web-{mode}.log",
                CELERY_BROKER_URL=proxy.url(NAME), **env)
    worker = start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "emails,maintenance", "-c", "2",
                    "--without-mingle", "--without-gossip", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
                    "--loglevel", "WARNING"], logs / f"worker-{mode}.log", **env)
    beat = start([sys.executable, "-m", "celery", "-A", "tasks", "beat", "--schedule",
                  str(logs / f"beat-{mode}"), "--loglevel", "WARNING"], logs / f"beat-{mode}.log", **env)
    figures = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", timeout=120)
        drive(3, CLIENTS, register(base, f"warm-{mode}"))  # connections, imports, first emails
        time.sleep(3)
        for n, disk in enumerate(DISKS):
            since = db_now(engine)
            if disk == "busy":
                with DiskWriter():
                    results = drive(SECONDS, CLIENTS, register(base, f"{mode}-{n}"))
            else:
                proxy.delay = CONFIRM_DELAY if n == 2 else 0.0
                results = drive(SECONDS, CLIENTS, register(base, f"{mode}-{n}"))
                proxy.delay = 0.0
            until = db_now(engine)
            ok = [latency * 1000 for status, latency in results if status == 201]
            delays = email_delays(engine, since, until, len(ok))
            figures[disk] = {"count": len(ok), "errors": len(results) - len(ok),
                             "p50": percentile(ok, 50), "p95": percentile(ok, 95),
                             "e50": percentile(delays, 50), "e95": percentile(delays, 95)}
    finally:
        for proc in (web, worker, beat):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (web, worker, beat):
            proc.wait()
        proxy.close()
    return figures


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    fresh_database(PG, NAME, ENV["DATABASE_URL"], ENV["REDIS_URL"])
    fresh_vhost(NAME)
    engine = create_engine(ENV["DATABASE_URL"])
    try:
        results = {mode: run_mode(mode, engine, logs) for mode in MODES}
    finally:
        engine.dispose()
        rabbitmqctl("delete_vhost", NAME, check=False)
        server = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)'))
        server.dispose()
    print(f"\nPublisher benchmark: {SECONDS:.0f} s per row, {CLIENTS} client threads registering, "
          f"{ENV['WEB_CONCURRENCY']} gunicorn workers, 1 worker (2 processes) + beat, {os.cpu_count()} CPUs, "
          f"busy disk = dd 1 GiB O_DIRECT+fsync loop in {DD_DIR}; load average (1 min) at the end: "
          f"{os.getloadavg()[0]:.1f}; logs in {logs}")
    print("| publisher | condition | registrations | errors | registration p50 / p95 | creation->email p50 / p95 |")
    print("|---|---|---:|---:|---|---|")
    for mode in MODES:
        label = "inline (baseline)" if mode == "inline" else mode
        for disk, f in results[mode].items():
            print(f"| {label} | {disk} | {f['count']} | {f['errors']} | {f['p50']:.0f} / {f['p95']:.0f} ms | "
                  f"{f['e50']:.2f} / {f['e95']:.2f} s |")


if __name__ == "__main__":
    main()
