"""The worker's half of a paid order through a real Celery worker, without a load generator: a backlog drained.

    python -m bench.worker_drain [orders, default 1000]

Places and pays the orders through the Flask test client while the worker consumes none of their queues
(their `start_payment` messages wait in RabbitMQ), then lets the worker consume and times it until every
confirmation `.eml` is written. Prints the worker's paid orders per second, its CPU per paid order (the
worker's process tree, from /proc), the machine's CPU per paid order (every process, PostgreSQL's,
RabbitMQ's and Redis's included), database commits and tasks run per paid order. A backlog is the worker's
maximum: with nothing else on the cores, it says what the worker alone can pay for. What `make bench-orders`
needs wrk for (latency at an offered load, the web's share) is not measured here.

BENCH_WORKER_PROCESSES (4) sets the pool size; BENCH_NAME and BENCH_REDIS_URL its scratch database, RabbitMQ
virtual host and Redis database (removed or emptied after). BENCH_PROFILE=<file>: py-spy samples the worker
while it drains (raw, flame-graph input; py-spy's own CPU is not in the worker's figure, its pauses are).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_worker_drain")
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
WORKER_PROCESSES = os.environ.get("BENCH_WORKER_PROCESSES", "4")
MAIL = Path(tempfile.mkdtemp(prefix="bench-mail-"))
WARM_UP = 40
QUEUES = ("payments", "emails")
from bench.stack import scratch_environment  # noqa: E402

os.environ.update(scratch_environment(PG, NAME, MAIL))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.stack import (customers, database_commits, fresh_database, fresh_vhost, machine_busy,  # noqa: E402
                         order_and_pay, drop_scratch, session_cpu)


def declare_queues(shop) -> None:
    """The task queues exist before the first publish (RabbitMQ drops what it cannot route)."""
    import celeryconfig

    with shop.celery.connection_for_write() as conn:
        for queue in celeryconfig.make_task_queues(shop.settings) + celeryconfig.make_dead_letter_queues(shop.settings):
            queue.bind(conn.default_channel).declare()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def emails() -> int:
    return sum(1 for _ in MAIL.glob("*.eml"))


def main() -> None:
    from bootstrap import bootstrap
    from web import create_app

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    shop = bootstrap()
    fresh_database(PG, NAME, os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    fresh_vhost(NAME)
    declare_queues(shop)
    engine = create_engine(os.environ["DATABASE_URL"])
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "maintenance", "-c", WORKER_PROCESSES,
         "--prefetch-multiplier", "4", "--without-mingle", "--without-gossip",
         "-n", f"drain-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "WARNING"],
        cwd=ROOT, stdout=(logs / "worker.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    app = create_app()
    control = shop.celery.control
    try:
        body, headers = customers(app)
        client = app.test_client()

        def place_and_pay(n: int) -> None:
            order_and_pay(client, body, headers, n)
            app.extensions["shop"].relay.close(30)

        wait_for(lambda: control.ping(timeout=1), 60, "the worker")
        for queue in QUEUES:
            control.add_consumer(queue, reply=True)
        place_and_pay(WARM_UP)
        try:
            wait_for(lambda: emails() >= WARM_UP, 120, "the warm-up's emails")
        except RuntimeError:
            subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", NAME, "name", "messages", "consumers"])
            print(control.inspect().active_queues())
            raise
        for queue in QUEUES:
            control.cancel_consumer(queue, reply=True)
        time.sleep(1)  # whatever the warm-up left in flight settles
        place_and_pay(count)
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses",
                                "--nonblocking", "-r", "100", "-f", "raw", "-o", os.environ["BENCH_PROFILE"],
                                "-p", str(worker.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) \
            if os.environ.get("BENCH_PROFILE") else None
        cpu, busy, commits = session_cpu(worker.pid), machine_busy(), database_commits(engine)
        started = time.monotonic()
        for queue in QUEUES:
            control.add_consumer(queue, reply=True)
        wait_for(lambda: emails() >= WARM_UP + count, 600, "every confirmation", interval=0.02)
        seconds = time.monotonic() - started
        cpu, busy = session_cpu(worker.pid) - cpu, machine_busy() - busy
        commits = database_commits(engine) - commits
        load = os.getloadavg()[0]
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
        with engine.connect() as conn:
            paid = conn.execute(text("SELECT count(*) FROM payments WHERE status = 'succeeded'")).scalar()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait()
        app.extensions["shop"].db.dispose()
        shop.relay.close(10)
        shop.close()
        engine.dispose()
        drop_scratch(PG, NAME, os.environ["REDIS_URL"])
        shutil.rmtree(MAIL, ignore_errors=True)
    print(f"\nWorker drain ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): {count} paid orders queued, "
          f"1 worker ({WORKER_PROCESSES} processes, prefetch 4), {os.cpu_count()} CPUs, "
          f"load average (1 min) {load:.1f} at the end; logs in {logs}")
    print("| orders | drained in | paid orders/s | CPU per paid order: worker / machine | commits per order |")
    print("|---:|---:|---:|---|---:|")
    print(f"| {count} ({paid - WARM_UP} paid) | {seconds:.2f} s | {count / seconds:,.1f} | "
          f"{1000 * cpu / count:.1f} / {1000 * busy / count:.1f} ms | {commits / count:.2f} |")


if __name__ == "__main__":
    main()
