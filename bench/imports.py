"""`make bench-imports`: a 1,000,000-row CSV feed through the SFTP inbox, end to end, against a floor.

The run gets its own database, RabbitMQ virtual host and Redis database, and
a real OpenSSH server on a loopback port. It starts a worker and beat, drops
the file in the inbox and times two moments: the job has succeeded (every
chunk merged and its search indexing queued), and the products are
searchable (every indexing message published and run, and a search through
the configured backend finds a product of the last chunk). The worker's peak
RSS is sampled for the whole process tree (main and pool processes) and for
its largest process. In the same run it measures the floor: a raw COPY of
the same file into a bare staging table, then one INSERT … ON CONFLICT into
an indexed table shaped like product_variants. It also prints the CPU the
run's own processes spent from the drop to searchable (the workers' trees
and the PostgreSQL backends serving its database), the figure to compare
on a machine shared with other work.

Two cases, one after the other, each on a fresh database: the feed into an
empty catalog, and the same feed into a catalog that already holds
`BENCH_EXISTING` products (1,000,000 by default, one variant each, with
their search vectors; seeded before the clock starts). Each case has its own
floor, measured right after it: for the second, the upsert goes into a table
already holding as many rows. `BENCH_CASES=empty` or `existing` runs one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
EXISTING = int(os.environ.get("BENCH_EXISTING", "1000000"))
CASES = os.environ.get("BENCH_CASES", "empty,existing").split(",")
WORKER_PROCESSES = os.environ.get("BENCH_WORKER_PROCESSES", "2")
# The indexer (the Procfile's `indexer`: a worker of one process on the search queue), so indexing runs beside
# the merge instead of waiting for a pool process; BENCH_INDEXER=0 leaves search to the worker alone.
INDEXER = os.environ.get("BENCH_INDEXER", "1") == "1"
NAME = os.environ.get("BENCH_NAME", "shop_bench_imports")
ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
HEADER = "sku,product_handle,product_name,description,category_path,price,currency,stock,image_urls,attributes\n"
FILLER = "Hand-finished, dishwasher safe, with a two year warranty"


def write_feed(path: Path, rows: int) -> None:
    """A feed of `rows` variants, three per product, across 7 × 12 categories (about 150 bytes a row)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        batch = []
        for n in range(rows):
            batch.append(f"SKU-{n:08d},product-{n // 3:07d},Product {n // 3},\"{FILLER}\","
                         f"Home > Room {n % 7} > Shelf {n % 12},{n % 997}.95,EUR,{n % 120},,size={n % 5}\n")
            if len(batch) == 10000:
                out.writelines(batch)
                batch = []
        out.writelines(batch)


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=120)


def drop_services() -> None:
    """The scratch database and virtual host, gone, and the Redis database emptied.

    (The catalog cache keeps a version key per product indexed, without expiry: a 1M-row run leaves
    a million keys, which the next run would otherwise start with.)
    """
    import redis
    from sqlalchemy import create_engine, text

    redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")).flushdb()

    engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)'))
    engine.dispose()
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", NAME], capture_output=True, timeout=60)


def fresh_services(env: dict) -> None:
    from alembic import command

    from models import crypto
    from settings import Settings
    from web.cli import alembic_config, ensure_database

    settings = Settings.from_env(env)  # the migrations encrypt with the PII key ring the processes use
    crypto.configure(crypto.KeyRing.parse(settings.PII_KEYS, settings.PII_ACTIVE_KEY))
    drop_services()
    ensure_database(env["DATABASE_URL"])
    command.upgrade(alembic_config(env["DATABASE_URL"]), "head")
    sh("rabbitmqctl", "-q", "add_vhost", NAME)
    sh("rabbitmqctl", "-q", "set_permissions", "-p", NAME, "guest", ".*", ".*", ".*")


SEED_CATALOG = """
INSERT INTO products (handle, name, description, min_price, in_stock, name_vector, search_vector)
SELECT 'existing-' || lpad(g::text, 7, '0'), 'Existing ' || g, 'Already in the catalog', 9.95, true,
       to_tsvector('english', 'Existing ' || g),
       setweight(to_tsvector('english', 'Existing ' || g), 'A') ||
       setweight(to_tsvector('english', 'Already in the catalog'), 'B')
FROM generate_series(1, :count) g;
INSERT INTO product_variants (product_id, sku, price, currency, stock)
SELECT id, 'EXISTING-' || substr(handle, 10), 9.95, 'EUR', 5 FROM products;
"""


def seed_catalog(database_url: str, count: int) -> float:
    """`count` products with a variant and search vectors, as a catalog in use; seconds taken."""
    from sqlalchemy import create_engine, text

    started = time.monotonic()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for statement in filter(str.strip, SEED_CATALOG.split(";")):
            conn.execute(text(statement), {"count": count})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE products, product_variants"))
    engine.dispose()
    return time.monotonic() - started


def _tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _memory(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM and Pss of one process, in bytes (empty once it has exited)."""
    try:
        lines = [*(Path("/proc") / str(pid) / "status").read_text().splitlines(),
                 *(Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines()]
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines
            if line.startswith(("VmRSS:", "VmHWM:", "Pss:"))}


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process (None once it has exited).

    Its children are sampled as processes of their own, so the CPU of those it waited for (cutime) is
    left out: counting it would count a pool process Celery replaced twice.
    """
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Samples a process tree: its largest process's peak, and the peaks of the tree's summed RSS and PSS.

    Pool processes are forked from the main one and share its pages, which
    summed RSS counts once per process; PSS splits each shared page between
    its sharers, so its sum is the memory the worker really holds.

    Sampled (every 0.5 s) rather than read once at the end, because pool
    processes are replaced after worker_max_tasks_per_child tasks and take their
    peak with them.
    """

    def __init__(self, *pids: int, database: str = ""):
        super().__init__(daemon=True)
        self.pids, self.largest, self.tree, self.tree_pss = pids, 0, 0, 0
        self.stopped = threading.Event()
        # CPU seconds per process, of the workers' trees and of PostgreSQL's backends serving `database`
        # (read from /proc at each sample, so a process's share is counted up to its last sample).
        self.database, self.cpu_from, self.cpu_last, self.backends = database, {}, {}, set()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.sample()

    def count_cpu(self) -> None:
        """From now on (the drop): CPU spent before it, in the processes running now, is not counted."""
        self.sample()
        self.cpu_from = dict(self.cpu_last)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds since count_cpu: the workers' processes, and the PostgreSQL backends serving them."""
        spent = {pid: seconds - self.cpu_from.get(pid, 0.0) for pid, seconds in self.cpu_last.items()}
        backends = sum(seconds for pid, seconds in spent.items() if pid in self.backends)
        return sum(spent.values()) - backends, backends

    def _backends(self) -> list[int]:
        if not self.database:
            return []
        import psycopg2
        try:
            conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
        except psycopg2.Error:
            return []
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                            "AND application_name <> 'bench-poll'", (self.database,))
                return [pid for (pid,) in cur.fetchall()]
        finally:
            conn.close()

    def sample(self) -> None:
        pids = [pid for top in self.pids for pid in _tree(top)]
        backends = self._backends()
        self.backends.update(backends)
        for pid in [*pids, *backends]:
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                self.cpu_last[pid] = max(seconds, self.cpu_last.get(pid, 0.0))
        memory = [_memory(pid) for pid in pids]
        self.largest = max([self.largest, *(m.get("VmHWM", 0) for m in memory)])
        self.tree = max(self.tree, sum(m.get("VmRSS", 0) for m in memory))
        self.tree_pss = max(self.tree_pss, sum(m.get("Pss", 0) for m in memory))

    def stop(self) -> tuple[int, int, int]:
        self.stopped.set()
        self.join()
        self.sample()
        return self.largest, self.tree, self.tree_pss


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy since boot (every process: PostgreSQL, workers, sshd, others)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait (guest time is counted in user)
    return busy / os.sysconf("SC_CLK_TCK")


def end_to_end(env: dict, inbox: Path, feed: Path, logs: Path) -> dict:
    from sqlalchemy import create_engine, text

    from tests.helpers import Process, wait_for

    celery = [sys.executable, "-m", "celery", "-A", "tasks"]
    worker = Process([*celery, "worker", "-Q", "imports,search,emails,maintenance", "-c", WORKER_PROCESSES,
                      "--without-mingle", "--without-gossip", "-n", f"bench-{os.getpid()}@%h"], logs / "worker.log",
                     env=env, ready="ready.")
    indexer = Process([*celery, "worker", "-Q", "search", "-c", "1", "--without-mingle", "--without-gossip",
                       "-n", f"bench-indexer-{os.getpid()}@%h"], logs / "indexer.log", env=env, ready="ready.")
    beat = Process([*celery, "beat", "--schedule", str(logs / "beat-schedule")], logs / "beat.log", env=env,
                   ready="beat: Starting")
    engine = create_engine(env["DATABASE_URL"], connect_args={"application_name": "bench-poll"})  # not counted
    try:
        worker.start()
        if INDEXER:
            indexer.start()
        sampler = RssSampler(*(process.proc.pid for process in (worker, indexer) if process.proc is not None),
                             database=NAME)
        sampler.start()
        beat.start()
        staged = inbox.parent / "big.csv.part"
        shutil.copyfile(feed, staged)
        shutil.chown(staged, "shopsftp", "shopsftp")
        os.utime(staged, (time.time() - 10, time.time() - 10))
        sampler.count_cpu()
        started, dropped, cpu = time.monotonic(), time.time(), machine_cpu()
        os.replace(staged, inbox / "big.csv")  # the drop: one rename, as an uploader finishing would
        wait_for(lambda: _finished(engine), timeout=900, interval=0.2, message="the import to finish")
        elapsed = time.monotonic() - started
        wait_for(lambda: _searchable(engine, env), timeout=900, interval=0.5, message="the products searchable")
        searchable = time.monotonic() - started
        cpu = machine_cpu() - cpu
        peak, tree, tree_pss = sampler.stop()
        import_cpu = sampler.cpu()
        with engine.connect() as conn:
            status, imported, timings = conn.execute(text(
                "SELECT status, rows_imported, extract(epoch FROM started_at - created_at) || ' s wait, ' || "
                "extract(epoch FROM finished_at - started_at) || ' s run' FROM import_jobs")).one()
            indexed = conn.execute(text("SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products'"
                                        )).scalar()
    finally:
        for process in (beat, worker, indexer):
            if process.proc is not None:
                process.stop()
        engine.dispose()
    return {"elapsed": elapsed, "searchable": searchable, "status": status, "imported": imported, "peak": peak,
            "tree": tree, "tree_pss": tree_pss, "cpu": cpu, "import_cpu": import_cpu, "timings": timings,
            "index_batches": indexed,
            "stages": stages([logs / "worker.log", logs / "indexer.log"], dropped)}


def stages(worker_logs: list[Path], dropped: float) -> list[tuple[str, str, str]]:
    """When each stage ran, in seconds from the drop, from the worker's log (chunks scanned and merged, indexing)."""
    import json
    import re
    from datetime import datetime

    spans: dict[str, list[float]] = {}
    index_seconds, index_tasks = 0.0, 0

    def seen(stage: str, at: float) -> None:
        if at < 0:
            return  # an earlier case's line: the cases share the log folder
        span = spans.setdefault(stage, [at, at, 0])
        span[0], span[1], span[2] = min(span[0], at), max(span[1], at), span[2] + 1

    lines = [line for log in worker_logs if log.exists() for line in log.read_text(errors="replace").splitlines()]
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = str(record.get("message", ""))
        if message == "import chunk scanned":
            seen("scan", record["at"] - dropped)
        elif message == "import chunk merged":
            seen(f"merge part {record.get('part', 0)}", record["at"] - dropped)
        elif message.startswith("Task tasks.search.index_products[") and " succeeded in " in message:
            at = datetime.strptime(record["time"], "%Y-%m-%dT%H:%M:%S%z").timestamp() - dropped
            seen("search indexing", at)
            found = re.search(r"succeeded in ([0-9.]+)s", message)
            index_seconds += float(found.group(1)) if found else 0.0
            index_tasks += 1
    rows = [(stage, f"{first:.1f} s → {last:.1f} s", f"{count} chunks" if stage != "search indexing"
             else f"{index_tasks} tasks, {index_seconds:.1f} s in tasks (log times to the second)")
            for stage, (first, last, count) in sorted(spans.items())]
    return rows


def _finished(engine):
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT finished_at FROM import_jobs")).scalar()


def _searchable(engine, env: dict) -> bool:
    """No indexing message left unpublished, no product without its vector, and the last product found by search."""
    from sqlalchemy import text

    from integrations.search import SearchQuery, make_search
    from settings import Settings

    with engine.connect() as conn:
        if conn.execute(text("SELECT EXISTS (SELECT 1 FROM outbox WHERE task = 'tasks.search.index_products' "
                             "AND published_at IS NULL) OR EXISTS (SELECT 1 FROM products WHERE search_vector "
                             "IS NULL)")).scalar():
            return False
        last = conn.execute(text("SELECT id::text FROM products WHERE handle = :h"),
                            {"h": f"product-{(ROWS - 1) // 3:07d}"}).scalar()
    # The trailing space: a finished word, matched whole rather than as a prefix.
    hits = make_search(Settings.from_env(env), engine).search(SearchQuery(text=f"{(ROWS - 1) // 3} ", limit=5))
    return last is not None and last in hits.ids


FLOOR_TABLES = """
DROP TABLE IF EXISTS floor_staging, floor_variants;
CREATE UNLOGGED TABLE floor_staging (sku text, product_handle text, product_name text, description text,
    category_path text, price text, currency text, stock text, image_urls text, attributes text);
CREATE TABLE floor_variants (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), product_id uuid NOT NULL,
    sku varchar(64) NOT NULL UNIQUE, price numeric(20,4) NOT NULL, currency char(3) NOT NULL,
    stock integer NOT NULL DEFAULT 0, reserved integer NOT NULL DEFAULT 0, attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamp NOT NULL DEFAULT now(), updated_at timestamp NOT NULL DEFAULT now());
CREATE INDEX ON floor_variants (product_id);
"""
FLOOR_UPSERT = """
INSERT INTO floor_variants (product_id, sku, price, currency, stock, attributes)
SELECT md5(product_handle)::uuid, sku, price::numeric, currency, stock::int, '{}'::jsonb FROM floor_staging
ON CONFLICT (sku) DO UPDATE SET price = EXCLUDED.price, currency = EXCLUDED.currency, stock = EXCLUDED.stock,
    updated_at = now()
"""


FLOOR_SEED = """
INSERT INTO floor_variants (product_id, sku, price, currency, stock)
SELECT md5('existing' || g)::uuid, 'EXISTING-' || g, 9.95, 'EUR', 5 FROM generate_series(1, %s) g;
ANALYZE floor_variants;
"""


def floor(database_url: str, feed: Path, existing: int = 0) -> dict:
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname=url.database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(FLOOR_TABLES)
            if existing:
                cur.execute(FLOOR_SEED, (existing,))
        started = time.monotonic()
        with conn, conn.cursor() as cur, feed.open("rb") as data:
            cur.copy_expert("COPY floor_staging FROM STDIN WITH (FORMAT csv, HEADER true)", data)
        copied = time.monotonic()
        with conn, conn.cursor() as cur:
            cur.execute(FLOOR_UPSERT)
        upserted = time.monotonic()
        with conn, conn.cursor() as cur:
            cur.execute("DROP TABLE floor_staging, floor_variants")
    finally:
        conn.close()
    return {"copy": copied - started, "upsert": upserted - copied}


def conditions() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"


def run_case(env: dict, sshd, work: Path, feed: Path, existing: int) -> tuple[dict, dict]:
    """One import of the feed on a fresh database holding `existing` products, then its floor."""
    fresh_services(env)
    if existing:
        seconds = seed_catalog(env["DATABASE_URL"], existing)
        print(f"seeded {existing:,} products with a variant each in {seconds:.0f} s", flush=True)
    inbox = sshd.folder_for(f"inbox-{existing}")
    env = {**env, **sshd.env(), "IMPORT_INBOXES": sshd.url(inbox), "IMPORT_REPORT_EMAIL": "bench@example.com"}
    print(f"conditions at start: {conditions()}", flush=True)
    result = end_to_end(env, inbox, feed, work)
    base = floor(env["DATABASE_URL"], feed, existing)
    print(f"conditions at end: {conditions()}", flush=True)
    return result, base


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="shop-bench-imports-"))
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": f"{PG_SERVER}/{NAME}",
           "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{NAME}",
           "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
           "STORAGE_LOCAL_DIR": str(work / "storage"), "EMAIL_OUTBOX_DIR": str(work / "mail"),
           "IMPORT_POLL_INTERVAL": "1", "LOG_LEVEL": "INFO", "OUTBOX_SWEEP_INTERVAL": "2"}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from tests.twins.sshd import SSHDTwin

    print(f"worker processes: {WORKER_PROCESSES}, indexer: {'1 process' if INDEXER else 'none'}, "
          f"IMPORT_MERGE_PARALLEL: {env.get('IMPORT_MERGE_PARALLEL', '2')}, "
          f"IMPORT_CHUNK_ROWS: {env.get('IMPORT_CHUNK_ROWS', '20000')}", flush=True)
    sshd = SSHDTwin().start()
    results = []
    try:
        feed = work / "feed.csv"
        write_feed(feed, ROWS)
        print(f"feed: {ROWS:,} rows, {feed.stat().st_size / 1e6:.0f} MB", flush=True)
        for case in CASES:
            existing = EXISTING if case == "existing" else 0
            results.append((existing, *run_case(env, sshd, work, feed, existing)))
            report(*results[-1])  # each case as soon as it is done, and all of them again at the end
    finally:
        sshd.stop()
        drop_services()
    for result in results:
        report(*result)
    shutil.rmtree(work, ignore_errors=True)


def report(existing: int, result: dict, base: dict) -> None:
    print(f"\n### into {'an empty catalog' if not existing else f'a catalog of {existing:,} products'}", flush=True)
    total_floor = base["copy"] + base["upsert"]
    lines = [
        ("end to end (drop → job succeeded)", f"{result['elapsed']:.1f} s", f"{ROWS / result['elapsed']:,.0f} rows/s"),
        ("end to end (drop → products searchable)", f"{result['searchable']:.1f} s",
         f"{ROWS / result['searchable']:,.0f} rows/s"),
        ("machine CPU, drop → searchable (all processes)", f"{result['cpu']:.1f} s",
         f"{result['cpu'] / ROWS * 1e6:.0f} µs a row"),
        ("CPU of the workers and their PostgreSQL backends, drop → searchable", f"{sum(result['import_cpu']):.1f} s",
         f"{sum(result['import_cpu']) / ROWS * 1e6:.0f} µs a row"),
        ("of which workers (Python) / PostgreSQL backends", f"{result['import_cpu'][0]:.1f} s",
         f"{result['import_cpu'][1]:.1f} s"),
        ("job status / rows imported", result["status"], f"{result['imported']:,}"),
        ("job timings", result["timings"], f"{result['index_batches']} search batches queued"),
        ("peak RSS, largest process (worker or indexer)", f"{result['peak'] / 2**20:.0f} MB", "target < 500 MB"),
        ("workers' peak, whole trees incl. indexer (summed RSS / PSS)", f"{result['tree'] / 2**20:.0f} MB",
         f"{result['tree_pss'] / 2**20:.0f} MB"),
        ("floor: COPY into bare staging", f"{base['copy']:.1f} s", f"{ROWS / base['copy']:,.0f} rows/s"),
        ("floor: one INSERT … ON CONFLICT (indexed)", f"{base['upsert']:.1f} s",
         f"{ROWS / base['upsert']:,.0f} rows/s"),
        ("floor total", f"{total_floor:.1f} s", ""),
        ("ratio searchable / floor", f"{result['searchable'] / total_floor:.1f}×", "target ≤ 10×"),
        ("ratio job succeeded / floor", f"{result['elapsed'] / total_floor:.1f}×", ""),
    ]
    lines += [(f"stage: {stage} (first → last, from the drop)", span, note)
              for stage, span, note in result.get("stages", [])]
    print("\n| measure | value | |\n|---|---|---|")
    for line in lines:
        print(f"| {' | '.join(line)} |", flush=True)


if __name__ == "__main__":
    main()
