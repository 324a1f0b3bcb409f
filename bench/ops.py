"""What the operations work costs: task metrics in the workers, and a /metrics scrape with the queue,
import and dead-letter collectors.

    make bench-ops [BENCH_TASKS=3000 BENCH_SCRAPES=200]

Uses its own scratch database, RabbitMQ virtual host and Redis database. Prints, each against a bare
baseline measured in the same run: a worker (2 processes) draining BENCH_TASKS outbox sweeps with
WORKER_METRICS_PORT off (the baseline) and on; and GET /metrics against GET /healthz, in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_ops")
TASKS = int(os.environ.get("BENCH_TASKS", "3000"))
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "200"))
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
ENV = {
    "APP_ENV": "development", "LOG_LEVEL": "WARNING", "DATABASE_URL": f"{PG}/{NAME}",
    "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{NAME}",
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"),
    "EMAIL_OUTBOX_DIR": tempfile.mkdtemp(prefix="bench-ops-mail-"),
}
os.environ.update(ENV)

from kombu import Connection  # noqa: E402

from bench.stack import free_port, fresh_database, fresh_vhost, rabbitmqctl  # noqa: E402


def prepare() -> None:
    fresh_database(PG, NAME, ENV["DATABASE_URL"], ENV["REDIS_URL"])
    fresh_vhost(NAME)


def declare_queues() -> None:
    import celeryconfig
    from settings import Settings

    settings = Settings.from_env()
    with Connection(ENV["CELERY_BROKER_URL"]) as conn:
        for queue in celeryconfig.make_task_queues(settings) + celeryconfig.make_dead_letter_queues(settings):
            queue.bind(conn.default_channel).declare()


def depth(queue: str) -> int:
    with Connection(ENV["CELERY_BROKER_URL"]) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def drain(metrics_port: int, folder: Path) -> float:
    """Tasks per second for a 2-process worker draining TASKS queued outbox sweeps."""
    from bootstrap import bootstrap
    from models.task_names import SWEEP_OUTBOX

    celery = bootstrap().celery
    for _ in range(TASKS):
        celery.send_task(SWEEP_OUTBOX)
    log = folder / f"worker-{metrics_port}.log"
    env = {**os.environ, "WORKER_METRICS_PORT": str(metrics_port), "WORKER_METRICS_DIR": str(folder / "samples"),
           "LOG_LEVEL": "INFO"}  # the worker says "ready." at INFO
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "maintenance",
                                   "-c", "2", "--without-mingle", "--without-gossip", "-l", "INFO"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while b"ready." not in log.read_bytes():
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit(f"worker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
            started = time.monotonic()
            while depth("maintenance"):
                time.sleep(0.02)
            return TASKS / (time.monotonic() - started)
        finally:
            worker.terminate()
            try:
                worker.wait(120)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def scrapes() -> tuple[float, float]:
    """Per second, in process: GET /healthz (the bare baseline) and GET /metrics with queues holding work."""
    from web import create_app

    with Connection(ENV["CELERY_BROKER_URL"]) as conn:
        producer = conn.Producer()
        for queue in ("emails", "search", "imports"):
            for _ in range(50):
                producer.publish(json.dumps([[], {}, {}]), exchange="shop", routing_key=queue,
                                 headers={"id": "bench", "task": f"tasks.{queue}.x"}, content_type="application/json")
        producer.publish(json.dumps([[], {}, {}]), exchange="shop.dead", routing_key="emails",
                         headers={"id": "dead", "task": "tasks.emails.x"}, content_type="application/json")
    client = create_app().test_client()
    rates = []
    for path in ("/healthz", "/metrics"):
        assert client.get(path).status_code == 200
        started = time.perf_counter()
        for _ in range(SCRAPES):
            client.get(path)
        rates.append(SCRAPES / (time.perf_counter() - started))
    return rates[0], rates[1]


def main() -> None:
    prepare()
    declare_queues()
    folder = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    try:
        bare = drain(0, folder)
        metered = drain(free_port(), folder)
        bare_again = drain(0, folder)
        healthz, metrics = scrapes()
    finally:
        rabbitmqctl("delete_vhost", NAME, check=False)
    baseline = (bare + bare_again) / 2
    load = os.getloadavg()
    print(f"\nbench-ops  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  tasks={TASKS} scrapes={SCRAPES}\n")
    print(f"| {'what':<52} | {'per second':>10} | {'ratio':>6} |")
    print(f"|{'-' * 54}|{'-' * 12}|{'-' * 8}|")
    for what, rate, base in [
        ("outbox sweeps, worker metrics off (baseline, mean)", baseline, baseline),
        ("  first / last baseline run", bare, baseline), ("", bare_again, baseline),
        ("outbox sweeps, worker metrics on", metered, baseline),
        ("GET /healthz in process (baseline)", healthz, healthz),
        ("GET /metrics in process (all collectors)", metrics, healthz),
    ]:
        print(f"| {what:<52} | {rate:>10.1f} | {rate / base:>6.2f} |")


if __name__ == "__main__":
    main()
