"""Checkout-and-pay benchmark: gunicorn, a worker and the sandbox gateway, loaded by wrk for a fixed time.

    make bench-orders [BENCH_SECONDS=20 BENCH_CONNECTIONS=8 BENCH_RATE=50 BENCH_RATE_CONNECTIONS=32 BENCH_VARIANTS=100]

Uses its own scratch database, RabbitMQ virtual host and Redis database (all emptied afterwards). The catalog
holds BENCH_VARIANTS products of one variant each and every checkout buys one of them at random (1: every
checkout queues on one variant's row lock, the single hot variant).
wrk runs bench/orders.lua: one connection (and thread) per customer, each posting an order, reading its id
and paying it. Two runs: closed loop (every connection as fast as it is answered: the maximum) and a fixed
offered load (BENCH_RATE orders/s, paced per connection with wrk's delay()). For each it prints paid orders
per second end to end (payment succeeded and confirmation email written), checkout latency percentiles,
creation-to-email percentiles from the database and the .eml files' times, the CPU spent per paid order by
the web, the worker and wrk, wrk's share of the machine's CPU, and a bare Flask endpoint's throughput under
the same gunicorn settings measured in the same run.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_orders")
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WEB_WORKERS = os.environ.get("BENCH_WEB_WORKERS", "2")
# Closed loop: a few connections per sync gunicorn worker keep each busy with requests queued behind it.
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", str(4 * int(WEB_WORKERS))))
RATE = float(os.environ.get("BENCH_RATE", "50"))
# Paced: each connection starts an order every RATE_CONNECTIONS / RATE seconds (0.64 s by default), far
# longer than a checkout and its payment, so the schedule and not the latency sets the rate.
RATE_CONNECTIONS = int(os.environ.get("BENCH_RATE_CONNECTIONS", "32"))
# Products in the catalog (one variant each); every checkout buys one at random. 1 is the single hot variant
# whose row lock every checkout queues on.
VARIANTS = int(os.environ.get("BENCH_VARIANTS", "100"))
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
MAIL = Path(tempfile.mkdtemp(prefix="bench-mail-"))
# BENCH_PROFILE=<dir>: py-spy samples the web and the worker during each run into <dir> (flame-graph input;
# the figures of a profiled run include py-spy's own CPU).
PROFILE = Path(os.environ["BENCH_PROFILE"]) if os.environ.get("BENCH_PROFILE") else None
from bench.stack import scratch_environment, worker_pool  # noqa: E402

# The tasks mostly wait on PostgreSQL, Redis and RabbitMQ: 16 threads (the Procfile's) keep the CPUs busy.
WORKER_POOL, WORKER_PROCESSES = worker_pool()

ENV = scratch_environment(PG, NAME, MAIL, WEB_CONCURRENCY=WEB_WORKERS, DATABASE_POOL_SIZE="4")
os.environ.update(ENV)

import requests  # noqa: E402

from bench.stack import (database_commits, drop_scratch, free_port, fresh_database, fresh_vhost, machine_busy,  # noqa: E402
                         seed_teapot_and_customers, session_cpu, worker_command)
from sqlalchemy import create_engine, text  # noqa: E402


def prepare_services() -> None:
    from bootstrap import bootstrap

    bootstrap()  # the migrations encrypt with the process's PII key ring, which the composition root configures
    fresh_database(PG, NAME, ENV["DATABASE_URL"], ENV["REDIS_URL"])
    fresh_vhost(NAME)


def clean_up_services() -> None:
    drop_scratch(PG, NAME, ENV["REDIS_URL"])
    shutil.rmtree(MAIL, ignore_errors=True)


def seed(customers: int, variants: int) -> tuple[list[str], list[str]]:
    """`variants` products of one variant each with plenty of stock, and a customer (with an access token) per
    connection."""
    from models.catalog.tables import Product, ProductVariant
    from web import create_app
    from web.auth.tokens import access_token

    app = create_app()
    with app.extensions["shop"].db.session() as session:
        variant, users = seed_teapot_and_customers(session, customers, "bench")
        products = [Product(handle=f"bench-product-{n}", name=f"Product {n}") for n in range(1, variants)]
        session.add_all(products)
        session.flush()
        more = [ProductVariant(product_id=p.id, sku=f"BENCH-{n + 2}", price=10, currency="EUR", stock=10**8)
                for n, p in enumerate(products)]
        session.add_all(more)
        session.flush()
        variant_ids = [str(v.id) for v in (variant, *more)]
        with app.app_context():
            tokens = [access_token(u.id, "customer", mfa=False, session_id=uuid.uuid4()) for u in users]
    app.extensions["shop"].db.dispose()
    return variant_ids, tokens


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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")



def services_cpu() -> dict[str, dict[int, float]]:
    """CPU seconds so far of each process of the services: PostgreSQL's backends serving the bench database,
    RabbitMQ's and Redis's servers (shared with whatever else runs on the machine: an upper bound of this
    run's share). Per process, so that a backend which exits during the run (a replaced pool process's) is
    left out of the difference instead of making it negative."""
    found = {"postgres": {}, "rabbitmq": {}, "redis": {}}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if command.startswith("postgres:") and f" {NAME} " in command:
            group = "postgres"
        elif "beam.smp" in command:
            group = "rabbitmq"
        elif command.startswith("redis-server"):
            group = "redis"
        else:
            continue
        found[group][int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def services_since(before: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each service spent since `before` (a `services_cpu()`), in the processes alive now (a
    backend that exited meanwhile is not counted: a floor for PostgreSQL)."""
    return {group: sum(cpu - before[group].get(pid, 0.0) for pid, cpu in now.items())
            for group, now in services_cpu().items()}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, connections: int, seconds: float, args: list[str], script: str | None = None,
            threads: int | None = None) -> dict:
    """wrk for `seconds`, one connection per thread unless `threads` is given (orders.lua keeps a thread's state
    per connection); its summary, its CPU seconds and the machine's."""
    command = ["wrk", "-t", str(threads or connections), "-c", str(connections), "-d", f"{seconds:.0f}s",
               "--timeout", "10s"]
    if script:
        command += ["-s", str(ROOT / "bench" / script)]
    command += [url, "--", *args]
    cpu, busy = children_cpu(), machine_busy()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = {"wrk_cpu": children_cpu() - cpu, "machine_cpu": machine_busy() - busy}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result.update(json.loads(line[7:]))
        elif line.startswith("Requests/sec:"):
            result["rps"] = float(line.split()[1])
    return result


def measure_bare(port: int, logs: Path) -> dict:
    proc = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--chdir", str(ROOT / "bench"),
                  "bare:app"], logs / "bare.log", PORT=str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/bare")
        # Two wrk threads after 2 s of warm-up, as bench/catalog.py's bare row: eight threads from a cold start
        # had it read 1,700-5,500 req/s on two cores.
        run_wrk(f"http://127.0.0.1:{port}/bare", CONNECTIONS, 2, [], threads=2)
        return run_wrk(f"http://127.0.0.1:{port}/bare", CONNECTIONS, min(SECONDS, 10), [], threads=2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def confirmed(engine, since: float, until: float) -> dict[str, float]:
    """Confirmation message id -> its order's creation time, for orders created in [since, until] and paid."""
    query = text("SELECT m.id::text, o.created_at FROM email_messages m "
                 "JOIN orders o ON o.id = (m.context->>'order_id')::uuid "
                 "JOIN payments p ON p.order_id = o.id AND p.status = 'succeeded' "
                 "WHERE m.template = 'order_confirmation' "
                 "AND o.created_at >= (to_timestamp(:since) AT TIME ZONE 'UTC') "
                 "AND o.created_at <= (to_timestamp(:until) AT TIME ZONE 'UTC')")
    with engine.connect() as conn:
        return {mid: created.replace(tzinfo=UTC).timestamp()
                for mid, created in conn.execute(query, {"since": since, "until": until}).all()}


def drain(engine, since: float, until: float, expected: int, timeout: float = 60) -> tuple[list[float], float]:
    """Creation-to-email seconds once every paid order of the window has its .eml (or time is up); last email."""
    deadline = time.monotonic() + timeout
    while True:
        files = {p.stem.split("-", 1)[1]: p.stat().st_mtime for p in MAIL.glob("*.eml")}
        created = confirmed(engine, since, until)
        written = [mid for mid in created if mid in files]
        if len(written) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    if len(written) < expected:
        print(f"note: {len(written)} confirmations written of {expected} orders paid")
    delays = [files[mid] - created[mid] for mid in written]
    return delays, max((files[mid] for mid in written), default=until)


def wait_worker(timeout: float = 60) -> None:
    """Until the worker answers a ping, so its start-up is not counted as email latency."""
    from bootstrap import bootstrap

    app = bootstrap().celery
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1):
            return
    raise RuntimeError("the worker did not start")


def run(label: str, base: str, files: list[str], connections: int, rate: float, web, worker, engine) -> dict:
    """One wrk run and its drain: the row of the table."""
    web_cpu, worker_cpu = session_cpu(web.pid), session_cpu(worker.pid)
    busy, commits = machine_busy(), database_commits(engine)
    services = services_cpu()
    since = time.time()
    spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses", "--nonblocking", "-r", "50",
           "-d", f"{SECONDS:.0f}", "-f", "raw"]
    spies = [subprocess.Popen([*spy, "-o", str(PROFILE / f"{name}-{rate:g}.txt"), "-p", str(proc.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name, proc in (("web", web), ("worker", worker))] if PROFILE else []
    found = run_wrk(base, connections, SECONDS, [*files, str(rate), str(connections)], "orders.lua")
    until = time.time()
    web_cpu = session_cpu(web.pid) - web_cpu
    for spy in spies:
        spy.wait()
    delays, last = drain(engine, since, until, found["pays"])
    worker_cpu = session_cpu(worker.pid) - worker_cpu
    services = services_since(services)
    commits = database_commits(engine) - commits
    paid = len(delays)
    with engine.connect() as conn:  # every task goes through the outbox: its rows are the tasks queued
        tasks = dict(conn.execute(text("SELECT task, count(*) FROM outbox WHERE created_at >= "
                                       "(to_timestamp(:since) AT TIME ZONE 'UTC') GROUP BY task"),
                                  {"since": since}).all())
    per = 1000 / max(paid, 1)
    return {"label": label, "connections": connections, **found, "paid": paid,
            "paid_rps": paid / max(SECONDS, last - since), "delays": delays,
            "web_ms": web_cpu * per, "worker_ms": worker_cpu * per, "wrk_ms": found["wrk_cpu"] * per,
            "wrk_share": found["wrk_cpu"] / max(found["machine_cpu"], 1e-9),
            "machine_ms": (machine_busy() - busy) * per, "load": os.getloadavg()[0],
            "services_ms": {name: cpu * per for name, cpu in services.items()},
            "commits": commits / max(paid, 1),
            "tasks": {k.rsplit(".", 1)[1]: v / max(paid, 1) for k, v in tasks.items()}}


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (make bench-orders installs it)")
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    prepare_services()
    load_start = os.getloadavg()[0]
    variant_ids, tokens = seed(max(CONNECTIONS, RATE_CONNECTIONS), VARIANTS)
    token_file, body_file = logs / "tokens.txt", logs / "checkout.json"
    token_file.write_text("\n".join(tokens) + "\n")
    body_file.write_text("".join(json.dumps({  # one body a line: each checkout takes one at random
        "items": [{"variantId": variant_id, "quantity": 1}],
        "shippingAddress": {"firstName": "B", "lastName": "M", "line1": "1 Road", "city": "Paris",
                            "postalCode": "75001", "country": "FR"}}) + "\n" for variant_id in variant_ids))
    bare = measure_bare(free_port(), logs)
    port = free_port()
    web = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], logs / "web.log",
                PORT=str(port))
    worker = start(worker_command(sys.executable, f"bench-{uuid.uuid4().hex[:6]}@%h"), logs / "worker.log")
    engine = create_engine(ENV["DATABASE_URL"])
    rows = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        wait_worker()
        files = [str(token_file), str(body_file)]
        rows.append(run("closed loop (max)", base, files, CONNECTIONS, 0, web, worker, engine))
        rows.append(run(f"offered {RATE:g} orders/s", base, files, RATE_CONNECTIONS, RATE, web, worker, engine))
    finally:
        for proc in (web, worker):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (web, worker):
            proc.wait()
        engine.dispose()
        clean_up_services()
    print(f"\nOrders benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): {SECONDS:.0f} s per run, "
          f"{WEB_WORKERS} gunicorn workers, 1 worker ({WORKER_PROCESSES} {WORKER_POOL.replace('prefork', 'processes')})"
          ", "
          f"{VARIANTS} products bought at random, {os.cpu_count()} CPUs, "
          f"load average (1 min) {load_start:.1f} at the start; logs in {logs}")
    print(f"bare Flask endpoint (wrk, 2 threads, {CONNECTIONS} connections): {bare['rps']:,.0f} req/s, "
          f"wrk {bare['wrk_cpu'] / max(bare['machine_cpu'], 1e-9):.0%} of the machine's CPU")
    print("| run | conns | checkout + pay | paid end to end | errors | checkout p50 / p95 / p99 "
          "| creation->email p50 / p95 | CPU per paid order: web / worker / wrk / machine | wrk CPU share | load |")
    print("|---|---:|---|---|---:|---|---|---|---:|---:|")
    for r in rows:
        pairs = r["pays"] / r["seconds"]
        print(f"| {r['label']} | {r['connections']} | {pairs:,.1f} orders/s ({2 * pairs / bare['rps']:.1%} of bare "
              f"req/s) | {r['paid_rps']:,.1f} orders/s ({r['paid']} of {r['pays']}) | "
              f"{r['errors'] + r['socket_errors']} | {r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f} ms | "
              f"{percentile(r['delays'], 50):.2f} / {percentile(r['delays'], 95):.2f} s | "
              f"{r['web_ms']:.0f} / {r['worker_ms']:.0f} / {r['wrk_ms']:.1f} / {r['machine_ms']:.0f} ms | "
              f"{r['wrk_share']:.1%} | {r['load']:.1f} |")
    for r in rows:
        tasks = ", ".join(f"{name} {n:.2f}" for name, n in sorted(r["tasks"].items()))
        print(f"{r['label']}: per paid order {r['commits']:.1f} commits in the database, tasks queued: {tasks}")
        services = ", ".join(f"{name} {ms:.1f} ms" for name, ms in r["services_ms"].items())
        print(f"{r['label']}: services' CPU per paid order: {services} (PostgreSQL: backends alive at the end; "
              f"RabbitMQ's and Redis's include whatever else used them meanwhile)")


if __name__ == "__main__":
    main()
