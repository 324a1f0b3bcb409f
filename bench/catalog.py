"""Catalog benchmark: 100,000 products in a scratch database, gunicorn serving, wrk loading on loopback.

    make bench-catalog                       # or: .venv/bin/python -m bench.catalog --help

Seeds `shop_bench_catalog` (never the test or development database) and
uses Redis database 9 (BENCH_REDIS_URL), then measures throughput and p50/p95/p99 latency of
search, filtered listing and product detail, and of a bare Flask endpoint
returning a constant JSON body under the same gunicorn settings, and prints
a table with each figure's ratio to the bare endpoint. Uncached rows are
sent with a staff token: staff are never served from the page cache, so they
measure PostgreSQL. Cached rows (guests, and signed-in customers, who share
the guests' pages) are measured after requesting each path once.

Each row also gives the server's CPU time per request (gunicorn's master and
workers, from /proc) and PostgreSQL's (the scratch database's backends alive
at the end of the row, from /proc; a backend that exited during the row, or a
parallel worker, is not counted; the sessions the row opened say when the figure
is a floor): the figures to compare on a machine shared
with other work. With `--open-loop`, each search row's maximum throughput (the closed
loop above) is then halved and offered at that fixed rate, so a request never waits for an earlier
answer (bench/open_loop.py: each request on its own connection, its latency
counted from when it was due), and the bare endpoint at the same rate beside
it; their p50/p95/p99 are the latency at half load.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import io
import json
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.catalog.indexing import REFRESH_FACTS  # noqa: E402
from settings import Settings  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
DATABASE = os.environ.get("BENCH_DATABASE", "shop_bench_catalog")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
_WORDS = ("mug cup kettle teapot bottle flask pan pot knife fork spoon bowl plate glass jar tin box bag lamp "
         "chair table shelf rug towel sheet pillow candle clock frame vase basket tray board grater peeler "
         "whisk ladle sieve scale timer mat apron glove brush sponge bucket hose rake spade trowel pruner "
         "planter seed soil fence light cable charger speaker headphone keyboard mouse monitor stand desk")
_ADJECTIVES = ("red blue green black white steel copper wooden ceramic glass travel insulated compact large "
              "small classic modern vintage rustic premium eco folding electric manual cordless")
WORDS, ADJECTIVES = _WORDS.split(), _ADJECTIVES.split()
# Vector as the indexing task writes it (integrations/search/postgres.py), for every row at once.
REBUILD_VECTORS = """
UPDATE products p SET name_vector = to_tsvector('english', p.name), search_vector =
    setweight(to_tsvector('english', p.name), 'A') || setweight(to_tsvector('english', p.description), 'B')
    || setweight(to_tsvector('english', coalesce(c.path, '') || ' '
       || coalesce((SELECT string_agg(value, ' ') FROM jsonb_each_text(p.attributes)), '')), 'C')
FROM products p2 LEFT JOIN categories c ON c.id = p2.category_id WHERE p2.id = p.id
"""


def scratch_url() -> str:
    return f"{PG_SERVER}/{DATABASE}"


def migrate() -> None:
    """Bring the scratch database to the newest revision (a no-op when it is there)."""
    from bench.stack import migrate as migrate_to_head

    migrate_to_head(scratch_url(), replace(Settings.from_env(), DATABASE_URL=scratch_url(), REDIS_URL=REDIS_URL))


def recreate_database() -> None:
    """Drop and create the scratch database, then migrate it."""
    engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    engine.dispose()
    migrate()


def _copy(conn, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    buffer.seek(0)
    with conn.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)


def _categories(rng: random.Random) -> list[tuple]:
    rows = []
    for root in ("Home", "Kitchen", "Garden", "Office", "Outdoor", "Electronics", "Bath", "Living", "Kids", "Gifts"):
        root_id = str(uuid.uuid4())
        rows.append((root_id, None, root, root))
        for child in rng.sample(ADJECTIVES, 5):
            rows.append((str(uuid.uuid4()), root_id, child.title(), f"{root} > {child.title()}"))
    return rows


def seed(count: int) -> list[tuple]:
    """`count` products with two variants each, through COPY; returns the categories."""
    rng = random.Random(42)
    categories = _categories(rng)
    leaf_ids = [row[0] for row in categories if row[1] is not None]
    products, variants = [], []
    for number in range(count):
        product_id = str(uuid.uuid4())
        noun = rng.choice(WORDS)
        name = f"{rng.choice(ADJECTIVES).title()} {noun} {rng.choice(WORDS)} {number}"
        description = " ".join(rng.choices(WORDS + ADJECTIVES, k=12))
        products.append((product_id, f"p-{number}", name, description, rng.choice(leaf_ids),
                         json.dumps({"colour": rng.choice(ADJECTIVES)})))
        for size in ("S", "L"):
            variants.append((product_id, f"SKU-{number}-{size}", f"{rng.uniform(1, 500):.2f}", "EUR",
                             rng.choice((0, 1, 3, 10, 25))))
    engine = create_engine(scratch_url())
    raw = engine.raw_connection()
    try:
        _copy(raw, "categories", ["id", "parent_id", "name", "path"], categories)
        _copy(raw, "products", ["id", "handle", "name", "description", "category_id", "attributes"], products)
        _copy(raw, "product_variants", ["product_id", "sku", "price", "currency", "stock"], variants)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text(REBUILD_VECTORS))
        # What queue_indexing does after an import: the products' lowest price and in-stock flag.
        conn.execute(REFRESH_FACTS, {"ids": [row[0] for row in products]})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return categories


def product_count() -> int:
    engine = create_engine(scratch_url())
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM products WHERE search_vector IS NOT NULL"))
    except Exception:
        return 0
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metrics_dir() -> str:
    """A fresh PROMETHEUS_MULTIPROC_DIR for one gunicorn, removed when this process exits (ends or fails)."""
    path = tempfile.mkdtemp(prefix="bench-prom-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def serve(app: str, workers: int, log: Path, worker_class: str = "") -> tuple[subprocess.Popen, str]:
    """gunicorn with the project's config (`make run`'s worker class unless one is given) serving `app`."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers),
           **({"WEB_WORKER_CLASS": worker_class} if worker_class else {}),
           "DATABASE_URL": scratch_url(), "REDIS_URL": REDIS_URL, "LOG_LEVEL": "WARNING",
           # The limiter still counts every request (its cost is measured) but never refuses one.
           "RATE_LIMIT_DEFAULT": "1000000000 per minute",
           "PROMETHEUS_MULTIPROC_DIR": metrics_dir()}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app], cwd=ROOT,
                               env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # importing the app takes over 30 s on a machine loaded 10+
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + ("/healthz" if app == "wsgi:app" else "/"), timeout=1):  # noqa: S310
                return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{app} did not start; see {log}")


def bearer(role: str = "customer") -> str:
    """An Authorization header value carrying an access token for a user of `role`, as sign-in issues it."""
    from web import create_app
    from web.auth.tokens import access_token

    app = create_app(replace(Settings.from_env(), DATABASE_URL=scratch_url(), REDIS_URL=REDIS_URL))
    with app.app_context():
        token = access_token(uuid.uuid4(), role, mfa=False, session_id=uuid.uuid4())
    app.extensions["shop"].db.dispose()
    return f"Bearer {token}"


def paths(categories: list[tuple], rng: random.Random) -> dict[str, list[str]]:
    engine = create_engine(scratch_url())
    with engine.connect() as conn:
        ids = [str(i) for i in conn.scalars(text("SELECT id FROM products ORDER BY random() LIMIT 1000"))]
    engine.dispose()
    words = WORDS + ADJECTIVES
    searches = [f"/api/v1/products?q={w}" for w in rng.sample(words, 40)]
    searches += [f"/api/v1/products?q={rng.choice(ADJECTIVES)}+{rng.choice(WORDS)}" for _ in range(40)]
    searches += [f"/api/v1/products?q={w[:3]}" for w in rng.sample(words, 20)]
    listings = []
    for _ in range(200):
        low = rng.randint(1, 300)
        listings.append(f"/api/v1/products?category={rng.choice(categories)[0]}&minPrice={low}"
                        f"&maxPrice={low + rng.randint(20, 200)}&inStock=true&sort={rng.choice(['price', 'newest'])}")
    return {"search": searches, "listing": listings, "detail": [f"/api/v1/products/{i}" for i in ids]}


def warm(url: str, path_file: Path) -> None:
    """Request every path once, so the cached scenario measures hits, not first renders."""
    from concurrent.futures import ThreadPoolExecutor

    def fetch(path: str) -> None:
        with urllib.request.urlopen(url + path, timeout=30):  # noqa: S310  (loopback)
            pass

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fetch, path_file.read_text().split()))


def server_cpu(process: subprocess.Popen) -> float:
    """CPU seconds used so far by gunicorn's master and its live workers."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [process.pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def load(url: str, path_file: Path, seconds: int, connections: int, threads: int, authorization: str = "",
         server: subprocess.Popen | None = None) -> dict:
    """wrk's closed loop: each connection sends its next request when its answer came."""
    cpu = server_cpu(server) if server else None
    database = database_cpu() if server else None
    sessions = database_sessions() if server else None
    if shutil.which("wrk") is None:  # bench.open_loop.closed: the same loop in Python (see the table's note)
        from bench.open_loop import closed

        result = closed(url, path_file.read_text().split(), seconds, connections, authorization)
    else:
        command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s",
                   str(ROOT / "bench" / "wrk.lua"), url, "--", str(path_file), authorization]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        line = next(line for line in output.splitlines() if line.startswith("RESULT "))
        result = json.loads(line[len("RESULT "):])
    result["rps"] = result["requests"] / result["seconds"]
    result["cpu_ms"] = (server_cpu(server) - cpu) * 1000 / max(result["requests"], 1) if server else None
    result["db_cpu_ms"] = database_cpu_since(database) * 1000 / max(result["requests"], 1) if server else None
    result["sessions"] = database_sessions() - sessions if server else None
    return result


def measure(args, categories) -> list[tuple[str, dict]]:
    work = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    rng = random.Random(7)
    customer, staff = bearer("customer"), bearer("staff")
    chosen = paths(categories, rng)
    for name, items in chosen.items():
        (work / name).write_text("\n".join(items) + "\n")
    (work / "bare").write_text("/\n")
    bare, bare_url = serve("bench.bare:app", args.workers, work / "bare.log", args.worker_class)
    try:
        app, app_url = serve("wsgi:app", args.workers, work / "app.log", args.worker_class)
    except RuntimeError:
        bare.terminate()  # not left serving after the run gave up
        bare.wait(20)
        raise
    scenarios = [("bare Flask, constant JSON", bare_url, "bare", ""),
                 ("search (q=…, uncached: staff)", app_url, "search", staff),
                 ("search, guest (Redis cache)", app_url, "search", ""),
                 ("search, signed in customer (Redis cache)", app_url, "search", customer),
                 ("listing, category+price+stock filters (uncached: staff)", app_url, "listing", staff),
                 ("listing, filters, signed in customer (Redis cache)", app_url, "listing", customer),
                 ("product detail, guest (Redis cache)", app_url, "detail", ""),
                 ("product detail, signed in customer (Redis cache)", app_url, "detail", customer),
                 ("product detail, staff (PostgreSQL)", app_url, "detail", staff),
                 ("bare Flask, again at the end", bare_url, "bare", "")]
    if args.only:
        scenarios = [s for s in scenarios if s[2] == "bare" or any(word in s[0] for word in args.only)]
    results, open_loop = [], []
    try:
        for label, url, name, authorization in scenarios:
            server = bare if url == bare_url else app
            if "cache" in label:
                warm(url, work / name)  # as a guest: signed-in customers read the same pages
            load(url, work / name, args.warmup, args.connections, args.threads, authorization)
            results.append((label, load(url, work / name, args.seconds, args.connections, args.threads,
                                        authorization, server)))
        if args.open_loop:
            from bench.open_loop import run

            for (label, url, name, authorization), (_, closed) in zip(scenarios, results, strict=False):
                if name != "search":
                    continue
                rate, found = closed["rps"] / 2, (work / name).read_text().split()
                if "cache" in label:  # the closed rows took longer than CATALOG_CACHE_TTL: hits, not renders
                    warm(url, work / name)
                open_loop.append((label, rate, run(url, found, rate, args.seconds, authorization)))
                open_loop.append(("bare Flask at the same rate", rate, run(bare_url, ["/"], rate, args.seconds)))
    finally:
        for process in (bare, app):
            process.terminate()
            process.wait(20)
        shutil.rmtree(work, ignore_errors=True)
    return results, open_loop


def table(results: list[tuple[str, dict]], args, count: int) -> str:
    # The machine's load drifts during a run: ratios are to the mean of the bare rows (first and last).
    bares = [r["rps"] for label, r in results if label.startswith("bare")]
    base = sum(bares) / len(bares)
    client = f"wrk {args.threads} threads" if shutil.which("wrk") else "Python asyncio client (no wrk here)"
    lines = [f"{count:,} products; gunicorn {args.workers} {worker_class(args)} workers; {client}, "
             f"{args.connections} connections, {args.seconds} s per row after {args.warmup} s warm-up; "
             f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end",
             "",
             "| endpoint | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms/req | PostgreSQL CPU ms/req "
             "| PostgreSQL sessions opened | ratio to bare |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in results:
        database, sessions = ("", "") if label.startswith("bare") else (f"{r['db_cpu_ms']:.2f}", r["sessions"])
        lines.append(f"| {label} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
                     f"{r['errors']} | {r['cpu_ms']:.2f} | {database} | {sessions} | {r['rps'] / base:.2f} |")
    return "\n".join(lines)


def worker_class(args) -> str:
    """The gunicorn worker class the run used, as gunicorn.conf.py reads it (with threads for gthread)."""
    settings = Settings.from_env()
    chosen = args.worker_class or settings.WEB_WORKER_CLASS
    return f"gthread ({settings.WEB_THREADS} threads)" if chosen == "gthread" else chosen


def open_table(open_loop: list[tuple[str, float, dict]], args) -> str:
    lines = [f"Open loop: half of each search row's maximum offered at a fixed rate for {args.seconds} s, "
             f"latency from when each request was due; load average {os.getloadavg()[0]:.2f} at the end",
             "",
             "| endpoint | offered req/s | answered req/s | p50 ms | p95 ms | p99 ms | errors | late sends |",
             "|---|---|---|---|---|---|---|---|"]
    for label, rate, r in open_loop:
        lines.append(f"| {label} | {rate:,.0f} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['p99']:.1f} | {r['errors']} | {r['late']} of {r['sent']} |")
    return "\n".join(lines)


def in_process(rounds: int) -> str:
    """CPU per cached hit in one process: answered in front of Flask, by the app behind it, and a bare endpoint.

    The kinds are taken in turn (bench.stack.interleaved), so a load that drifts weighs on each alike; with
    Flask's test client, so the HTTP server's own work (parsing, writing) is in none of them.
    """
    from werkzeug.test import Client

    from bench.bare import app as bare_app
    from bench.stack import interleaved
    from web import create_app

    app = create_app(replace(Settings.from_env(), DATABASE_URL=scratch_url(), REDIS_URL=REDIS_URL,
                             LOG_LEVEL="WARNING", RATE_LIMIT_DEFAULT="1000000000 per minute"))
    customer = {"Authorization": bearer("customer")}
    front, behind, bare = app.test_client(), Client(app.wsgi_app.app), bare_app.test_client()
    engine = create_engine(scratch_url())
    with engine.connect() as conn:
        product = conn.scalar(text("SELECT id FROM products ORDER BY id LIMIT 1"))
    engine.dispose()
    pages = {"detail": f"/api/v1/products/{product}", "search": "/api/v1/products?q=mug"}
    for path in pages.values():
        assert front.get(path).status_code == 200  # rendered once: the rest are hits
    calls = {"bare Flask, constant JSON": lambda: bare.get("/")}
    for name, path in pages.items():
        for who, headers in (("guest", {}), ("signed in customer", customer)):
            for where, client in (("in front of Flask", front), ("Flask app", behind)):
                calls[f"{name}, {who}: {where}"] = lambda c=client, p=path, h=headers: c.get(p, headers=h)
    results = interleaved(calls, rounds)
    app.extensions["shop"].db.dispose()
    base = results["bare Flask, constant JSON"][1]
    lines = [f"In process: {rounds:,} requests of each kind taken in turn (test client, no HTTP server); "
             f"load average {os.getloadavg()[0]:.2f} at the end", "",
             "| request | median wall µs | median CPU µs | CPU / bare |", "|---|---|---|---|"]
    lines += [f"| {name} | {wall:,.0f} | {cpu:,.0f} | {cpu / base:.2f} |" for name, (wall, cpu) in results.items()]
    return "\n".join(lines)


def database_cpu() -> dict[int, float]:
    """CPU seconds used so far by each of the scratch database's server processes (its backends, from /proc)."""
    engine = create_engine(scratch_url())
    with engine.connect() as conn:
        pids = list(conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> "
                                      "pg_backend_pid()"), {"d": DATABASE}))
    engine.dispose()
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


def database_sessions() -> int:
    """Sessions opened so far on the scratch database (pg_stat_database, PostgreSQL 14+), this one's included.

    A row opens two for its measurements; beyond those, the servers' pools opened connections during the
    row, and when that is more than the pools hold, backends exited during it whose CPU `database_cpu_since`
    cannot count: the row's PostgreSQL figure is then a floor.
    """
    engine = create_engine(scratch_url())
    with engine.connect() as conn:
        opened = conn.scalar(text("SELECT sessions FROM pg_stat_database WHERE datname = :d"), {"d": DATABASE})
    engine.dispose()
    return opened


def database_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds the backends alive now spent since `before` (a `database_cpu()`): a backend that exited
    meanwhile (a pool's connection closed under load) is left out, so the figure is a floor, never negative."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in database_cpu().items())


def database_cpu_per_call(calls: dict, rounds: int) -> dict[str, float]:
    """µs of the scratch database's CPU per call of each of `calls`, each kind run alone `rounds` times."""
    database = {}
    for name, call in calls.items():
        before = database_cpu()
        for _ in range(rounds):
            call()
        database[name] = database_cpu_since(before) * 1e6 / rounds
    return database


def in_process_uncached(rounds: int, categories) -> str:
    """CPU per uncached read (a staff caller, never served from the page cache) in one process.

    Each kind's requests go over the benchmark's own paths (100 search texts, 200 filtered listings, 1,000
    products) in turn, through the whole stack (the layer in front and the app), with the test client; the
    kinds are taken in turn as in `in_process`. PostgreSQL's CPU is measured apart, each kind alone for
    `rounds` requests, from its backends' /proc counters.
    """
    from bench.bare import app as bare_app
    from bench.stack import interleaved
    from web import create_app

    app = create_app(replace(Settings.from_env(), DATABASE_URL=scratch_url(), REDIS_URL=REDIS_URL,
                             LOG_LEVEL="WARNING", RATE_LIMIT_DEFAULT="1000000000 per minute"))
    staff = {"Authorization": bearer("staff")}
    client, bare = app.test_client(), bare_app.test_client()
    chosen = paths(categories, random.Random(7))
    calls = {"bare Flask, constant JSON": lambda: bare.get("/")}
    for name, found in chosen.items():
        turn = iter(found * (4 * rounds // len(found) + 100))

        def call(turn=turn):
            response = client.get(next(turn), headers=staff)
            assert response.status_code == 200, response.get_data()
        calls[f"{name}, staff (uncached)"] = call
    results = interleaved(calls, rounds)
    database = database_cpu_per_call({name: call for name, call in calls.items() if not name.startswith("bare")},
                                     rounds)
    app.extensions["shop"].db.dispose()
    base = results["bare Flask, constant JSON"][1]
    lines = [f"In process, uncached: {rounds:,} requests of each kind taken in turn (test client, no HTTP server); "
             f"PostgreSQL CPU from its backends, each kind alone; load average {os.getloadavg()[0]:.2f} at the end",
             "", "| request | median wall µs | median CPU µs | CPU / bare | PostgreSQL CPU µs/req |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {wall:,.0f} | {cpu:,.0f} | {cpu / base:.2f} | "
              f"{database[name]:,.0f} |" if name in database else
              f"| {name} | {wall:,.0f} | {cpu:,.0f} | {cpu / base:.2f} | |" for name, (wall, cpu) in results.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="",
                        help="gunicorn's worker class (default: WEB_WORKER_CLASS, what make run uses)")
    parser.add_argument("--in-process", type=int, metavar="ROUNDS", default=0,
                        help="instead: CPU per cached hit in one process, in front of Flask vs the app vs bare")
    parser.add_argument("--in-process-uncached", type=int, metavar="ROUNDS", default=0,
                        help="instead: CPU per uncached read (staff) in one process, Python and PostgreSQL")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the scratch database is ready")
    parser.add_argument("--only", nargs="*", help="rows whose label holds one of these words (and the bare row)")
    parser.add_argument("--open-loop", action="store_true",
                        help="then offer each search row half its maximum at a fixed rate (p95 at half load)")
    args = parser.parse_args()
    started = time.monotonic()
    if args.reseed or product_count() != args.products:
        recreate_database()
        seed(args.products)
        print(f"seeded {args.products:,} products in {time.monotonic() - started:.0f} s", flush=True)
    else:
        migrate()
    engine = create_engine(scratch_url())
    with engine.connect() as conn:
        categories = [tuple(row) for row in conn.execute(text("SELECT id, parent_id, name, path FROM categories"))]
    engine.dispose()
    import redis
    redis.Redis.from_url(REDIS_URL).flushdb()
    if args.in_process:
        print(in_process(args.in_process))
        return
    if args.in_process_uncached:
        print(in_process_uncached(args.in_process_uncached, categories))
        return
    print(f"load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    results, open_loop = measure(args, categories)
    print(table(results, args, args.products))
    if open_loop:
        print()
        print(open_table(open_loop, args))


if __name__ == "__main__":
    main()
