"""What every benchmark sets up: a free port, a fresh migrated database and a fresh RabbitMQ virtual host."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text


def scratch_environment(pg: str, name: str, mail: Path, **more: str) -> dict[str, str]:
    """The settings of a benchmark's processes: its scratch database, RabbitMQ virtual host and Redis database
    (BENCH_REDIS_URL), the sandbox vendors, emails written to `mail`, the rate limit out of the way."""
    return {
        "APP_ENV": "development", "LOG_LEVEL": "WARNING", "DATABASE_URL": f"{pg}/{name}",
        "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{name}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
        "EMAIL_OUTBOX_DIR": str(mail), "FULFILLMENT_EMAIL": "", "PAYMENTS_PROVIDER": "sandbox",
        # A benchmark's customers order far faster than people: the per-user budget (still checked in Redis
        # on every request) must not be what limits the run.
        "RATE_LIMIT_DEFAULT": "1000000 per minute",
        **more,
    }


# The worker the money path's benchmarks start: every queue an order's tasks go to, in threads as the Procfile's
# `orders` worker (BENCH_WORKER_POOL=prefork for processes; BENCH_WORKER_PROCESSES is the pool's size).
WORKER_QUEUES = "payments,emails,shipping,search,maintenance"


def worker_pool(threads: str = "16", processes: str = "4") -> tuple[str, str]:
    """The benchmark worker's pool and size: BENCH_WORKER_POOL and BENCH_WORKER_PROCESSES (`threads` threads or
    `processes` processes by default)."""
    pool = os.environ.get("BENCH_WORKER_POOL", "threads")
    return pool, os.environ.get("BENCH_WORKER_PROCESSES", threads if pool == "threads" else processes)


def worker_command(python: str, node: str, threads: str = "16", processes: str = "4") -> list[str]:
    """The Celery worker command of a benchmark, its pool and size from `worker_pool`."""
    pool, size = worker_pool(threads, processes)
    # threads: the Procfile's pool, Celery's threads stopping as processes do (tasks/pools.py)
    head = (["env", "CELERY_CUSTOM_WORKER_POOL=tasks.pools:ThreadPool", "DATABASE_POOL_SIZE=6"]
            if pool == "threads" else [])
    pool = "custom" if pool == "threads" else pool
    return [*head, python, "-m", "celery", "-A", "tasks", "worker", "-Q", WORKER_QUEUES, "--pool", pool, "-c", size,
            # Tasks of these queues are short: a few reserved messages per process hide the broker round trip
            # between two tasks (acks stay late, so a lost worker's messages come back).
            "--prefetch-multiplier", "4", "--without-mingle", "--without-gossip", "-n", node,
            "--loglevel", "WARNING"]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def migrate(url: str, settings=None) -> None:
    """The database at `url` brought to the newest revision (a no-op when it is there).

    Migration 0002 encrypts with the process's PII key ring, which only the
    composition root configures: so the process is built with
    `bootstrap(settings)` (default: the environment's) first, as every
    entry point is, and its pools closed again.
    """
    from alembic import command

    from bootstrap import bootstrap
    from web.cli import alembic_config

    shop = bootstrap(settings)
    try:
        command.upgrade(alembic_config(url), "head")
    finally:
        shop.close()


def fresh_database(server: str, name: str, url: str, redis_url: str | None = None) -> None:
    """Database `name` on `server` dropped, created and migrated to head (reached at `url`); its Redis db emptied."""
    from web.cli import ensure_database

    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
    ensure_database(url)
    migrate(url)
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()


def drop_scratch(server: str, name: str, redis_url: str) -> None:
    """What `fresh_database` and `fresh_vhost` made for a benchmark, removed: the database and the virtual host
    dropped, the Redis database emptied."""
    import redis

    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
    rabbitmqctl("delete_vhost", name, check=False)
    redis.Redis.from_url(redis_url).flushdb()


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=120)


def fresh_vhost(name: str) -> None:
    """RabbitMQ virtual host `name`, empty, open to guest."""
    rabbitmqctl("delete_vhost", name, check=False)
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")


def seed_teapot_and_customers(session, count: int, email_prefix: str):
    """One variant with stock to spare and `count` verified customers, flushed: (variant, users)."""
    from models.catalog.tables import Product, ProductVariant
    from models.users.tables import User

    product = Product(handle="bench-teapot", name="Teapot")
    session.add(product)
    session.flush()
    variant = ProductVariant(product_id=product.id, sku="BENCH-1", price=10, currency="EUR", stock=10**8)
    users = [User(email=f"{email_prefix}{n}@example.com", password_hash="!", first_name="B",  # noqa: S106
                  last_name=str(n), role="customer", is_verified=True) for n in range(count)]
    session.add_all([variant, *users])
    session.flush()
    return variant, users


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of session `sid`'s processes (a server and its children), the exited ones
    included: a child replaced meanwhile (Celery's max tasks per child, gunicorn's max requests) counts in its
    parent's cutime/cstime once reaped, else the total would drop when it goes."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after the name: state, ppid, pgrp, session, ..., utime, stime, cutime, cstime
            total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def interleaved(calls: dict, rounds: int = 2000, clock=time.process_time) -> dict[str, tuple[float, float]]:
    """Median wall and CPU microseconds per call of each of `calls`, taken in turn, so drifting load hits all alike.

    CPU time is this process's only (Redis's own work is not in it); on a loaded machine it is the
    steadier figure, as wall time then mostly measures waiting for a core. `clock=time.thread_time`
    leaves out the process's other threads (a background publisher working after the previous call).
    """
    for fn in calls.values():
        for _ in range(min(50, rounds)):
            fn()
    walls, cpus = {name: [] for name in calls}, {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            started, cpu = time.perf_counter(), clock()
            fn()
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(clock() - cpu)
    return {name: (statistics.median(walls[name]) * 1e6, statistics.median(cpus[name]) * 1e6) for name in calls}


def machine_busy() -> float:
    """CPU seconds every core spent not idle (nor waiting on I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def database_commits(engine) -> int:
    """Transactions committed in the bench database so far (every process: web, worker, publishers)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                                 )).scalar()


CHECKOUT = {"shippingAddress": {"firstName": "B", "lastName": "M", "line1": "1 Road", "city": "Paris",
                                "postalCode": "75001", "country": "FR"}}


def customers(app) -> tuple[dict, list[dict]]:
    """A variant and 8 customers seeded: the checkout body and each customer's headers."""
    from web.auth.tokens import access_token

    with app.extensions["shop"].db.session() as session:
        variant, users = seed_teapot_and_customers(session, 8, "path")
        body = {"items": [{"variantId": str(variant.id), "quantity": 1}], **CHECKOUT}
        with app.app_context():
            headers = [{"Authorization": "Bearer " + access_token(u.id, "customer", mfa=False,
                                                                  session_id=uuid.uuid4())} for u in users]
    return body, headers


def order_and_pay(client, body: dict, headers: list[dict], count: int) -> list[str]:
    """`count` orders placed and paid through the test client, the customers in turn; their payment ids."""
    payments = []
    for n in range(count):
        order = client.post("/api/v1/orders", json=body, headers=headers[n % len(headers)]).json
        client.post(f"/api/v1/orders/{order['id']}/pay", json={"paymentMethod": "sandbox_success"},
                    headers=headers[n % len(headers)])
        payments.append(order["payment"]["id"])
    return payments
