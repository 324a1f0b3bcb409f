"""Backup and restore figures on 1M products + 1M orders: full backup time and size, restore time (RTO),
and the RPO when the primary is SIGKILLed under checkout load.

Everything runs on a scratch PostgreSQL 15 cluster (as `postgres`, on free loopback ports) that the
script makes and deletes; the machine's own server is not touched. The bare baseline, measured in the
same run, is a plain `cp -a` of the same data folder: what moving the bytes costs with no backup tool.

The checkout load is the real thing: the app under gunicorn (2 sync workers) on the scratch cluster,
wrk POSTing /api/v1/orders (bench/wrk_last.lua, which keeps the newest order each client was told was
created). The cluster is SIGKILLed mid-load, everything the archive holds is restored, and the newest
acknowledged order is looked for in the copy. Checkout's tasks go to a scratch RabbitMQ virtual host
that no worker consumes; Redis database 11 (BENCH_REDIS_URL).

    python -m bench.backups [--rows 1000000] [--seconds 75] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import catalog
from bench.retention import _token, checkout_files
from integrations.backups import ScratchCluster
from models.backups.jobs import make_tool
from settings import Settings
from tests.backups.conftest import free_port

SEED = """
INSERT INTO users (id, email, password_hash, first_name, last_name)
  VALUES ('00000000-0000-0000-0000-000000000001', 'bench@example.com', 'x', 'Bench', 'User');
INSERT INTO products (handle, name, description)
  SELECT 'product-' || g, 'Product ' || g, repeat('a fine thing ', 8) FROM generate_series(1, :rows) g;
INSERT INTO orders (user_id, currency, subtotal, total, created_at)
  SELECT '00000000-0000-0000-0000-000000000001', 'EUR', (g % 500) + 0.99, (g % 500) + 5.94,
         now() - make_interval(secs => g) FROM generate_series(1, :rows) g;
INSERT INTO product_variants (product_id, sku, price, currency, stock)
  SELECT id, 'BENCH-1', 10, 'EUR', 1000000000 FROM products WHERE handle = 'product-1';
"""
USER_ID = "00000000-0000-0000-0000-000000000001"
VHOST = "shop_bench_backups"
ROOT = Path(__file__).resolve().parent.parent


def timed(fn, *args, **kwargs) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def vhost(create: bool) -> None:
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)
    if create:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"], check=True,
                       capture_output=True)


def checkout_until_killed(url: str, files, token: str, clients: int, seconds: float, source) -> dict:
    """wrk POSTing checkouts; after `seconds`, SIGKILL the server (postmaster and children) under it.

    Returns wrk's figures and what it was last told: the newest acknowledged order's id and createdAt.
    """
    wrk = subprocess.Popen(["wrk", "-t", "1", "-c", str(clients), "-d", f"{seconds + 60:.0f}s",
                            "-s", "bench/wrk_last.lua", url, "--", str(files[0]), token, str(files[1])],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds)  # the load runs for a fixed time by design: this is a benchmark, not a test
    pid = int((source.data_dir / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    subprocess.run(["pkill", "-KILL", "-P", str(pid)], check=False)  # its backends and archiver, by parent id
    time.sleep(2)  # answers in flight come back (as errors) before wrk reports
    wrk.send_signal(signal.SIGINT)  # wrk stops and prints its summary
    output = wrk.communicate(timeout=60)[0]
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in output.splitlines()
             if line.startswith(("RESULT ", "LAST "))}
    if "LAST" not in lines or not json.loads(lines["LAST"])["createdAt"]:
        raise RuntimeError(f"wrk said: {output}")
    return {**json.loads(lines["RESULT"]), **json.loads(lines["LAST"]), "killed_at": killed_at}


def utc_naive(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=75.0,
                        help="checkout load before the SIGKILL (longer than archive_timeout, for a steady state)")
    parser.add_argument("--clients", type=int, default=4, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="shop-bench-bk-"))
    base.chmod(0o755)
    port = free_port()
    settings = replace(Settings.from_env(), BACKUP_DATABASE_URL=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/shop",
                       BACKUP_PG_DATA=str(base / "data"), BACKUP_PG_SOCKET_DIR=str(base / "sock"),
                       BACKUP_RUN_AS="postgres", BACKUP_REPO_PATH=str(base / "repo"),
                       BACKUP_WORK_DIR=str(base / "work"), BACKUP_CIPHER_PASS="bench-passphrase")  # noqa: S106
    tool = make_tool(settings)
    source = ScratchCluster(base / "data", port, "", run_as="postgres", socket_dir=str(base / "sock"))
    source.initdb("wal_level = replica", "archive_mode = on", f"archive_command = '{tool.archive_command()}'",
                  "archive_timeout = 60", "max_wal_size = 2GB")
    restored = ScratchCluster(base / "restored", free_port(), "", run_as="postgres")
    rows = []
    try:
        source.start()
        from bench.stack import migrate
        from web.cli import ensure_database
        ensure_database(settings.BACKUP_DATABASE_URL)
        tool.stanza_create()  # before any WAL is pushed: a failed push is retried only a minute later
        migrate(settings.BACKUP_DATABASE_URL, settings)
        engine = create_engine(settings.BACKUP_DATABASE_URL)
        load_seconds = time.perf_counter()
        with engine.begin() as conn:
            for statement in filter(str.strip, SEED.split(";")):
                conn.execute(text(statement), {"rows": args.rows})
        load_seconds = time.perf_counter() - load_seconds
        with engine.connect() as conn:
            db_bytes = conn.execute(text("SELECT pg_database_size('shop')")).scalar()
        engine.dispose()
        tool.check()

        # Bare baseline: copy the data folder as files (what any backup must at least read and write).
        bare_backup = timed(subprocess.run, ["cp", "-a", str(source.data_dir), str(base / "copy")], check=True)
        shutil.rmtree(base / "copy")

        backup_seconds = timed(tool.backup, "full")
        newest = tool.info().newest
        verify_seconds = timed(tool.verify)

        # RPO: checkout through the app, SIGKILL the whole server, restore everything the archive holds.
        catalog.PG_SERVER, catalog.DATABASE = f"postgresql+psycopg2://postgres@127.0.0.1:{port}", "shop"
        catalog.REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
        os.environ.update({"DATABASE_URL": catalog.scratch_url(), "REDIS_URL": catalog.REDIS_URL,
                           "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}", "LOG_LEVEL": "WARNING"})
        vhost(create=True)
        engine = create_engine(settings.BACKUP_DATABASE_URL)
        with engine.connect() as conn:
            variant = conn.execute(text("SELECT id::text FROM product_variants WHERE sku = 'BENCH-1'")).scalar()
        engine.dispose()
        files = checkout_files(base, variant)
        server, url = catalog.serve("wsgi:app", args.workers, base / "gunicorn.log")
        try:
            load = checkout_until_killed(url, files, _token(USER_ID), args.clients, args.seconds, source)
        finally:
            server.terminate()
            server.wait()
        restored.prepare()
        restore_seconds = timed(tool.restore, restored.data_dir)
        recovery = time.perf_counter()
        restored.configure()
        restored.start()
        restored.wait_promoted()
        replay_seconds = time.perf_counter() - recovery
        engine = create_engine(restored.url("shop"))
        with engine.connect() as conn:
            recovered, newest_order = conn.execute(text(
                "SELECT count(*) - :rows, max(created_at) FROM orders"), {"rows": args.rows}).one()
            newest_kept = load["id"] and conn.execute(text("SELECT count(*) FROM orders WHERE id = :id"),
                                                      {"id": load["id"]}).scalar()
        engine.dispose()
        last_acknowledged = utc_naive(load["createdAt"])
        rpo = max((last_acknowledged - newest_order).total_seconds(), 0.0)

        rows = [
            (f"database size ({args.rows:,} products + {args.rows:,} orders)", f"{db_bytes / 1e6:,.0f} MB", ""),
            ("seed (INSERT … generate_series)", f"{load_seconds:,.1f} s", ""),
            ("bare: cp -a of the data folder", f"{bare_backup:,.1f} s", "1.00"),
            ("full backup (lz4, encrypted, 1 process)", f"{backup_seconds:,.1f} s",
             f"{backup_seconds / bare_backup:.2f}"),
            ("  repository size of that backup", f"{newest.repo_size / 1e6:,.0f} MB",
             f"{newest.repo_size / db_bytes:.2f} of db"),
            ("verify of the repository", f"{verify_seconds:,.1f} s", f"{verify_seconds / bare_backup:.2f}"),
            ("restore: files (pgbackrest restore)", f"{restore_seconds:,.1f} s",
             f"{restore_seconds / bare_backup:.2f}"),
            ("restore: WAL replay to promoted", f"{replay_seconds:,.1f} s", ""),
            ("RTO (restore + replay; target < 600 s)", f"{restore_seconds + replay_seconds:,.1f} s",
             "met" if restore_seconds + replay_seconds < 600 else "NOT met"),
            (f"checkout (POST /api/v1/orders, gunicorn {args.workers} workers, wrk {args.clients} connections) "
             f"for {args.seconds:.0f} s", f"{load['acknowledged']:,} created", ""),
            ("  p50 / p95 latency (whole run, errors after the kill included)",
             f"{load['p50']:,.0f} / {load['p95']:,.0f} ms", ""),
            ("  last acknowledged order (createdAt)", f"{last_acknowledged:%H:%M:%S.%f}"[:-3], ""),
            ("  SIGKILL of the server", f"{load['killed_at'].replace(tzinfo=None):%H:%M:%S.%f}"[:-3], ""),
            ("  newest order the restore brought back", f"{newest_order:%H:%M:%S.%f}"[:-3], ""),
            ("  checkout orders the restore brought back", f"{recovered:,} of {load['acknowledged']:,}",
             "last acknowledged one: " + ("present" if newest_kept else "lost")),
            ("RPO (last acknowledged order - newest recovered; target <= 60 s)", f"{rpo:,.1f} s",
             "met" if rpo <= 60 else "NOT met"),
        ]
    finally:
        vhost(create=False)
        restored.remove()
        source.remove()
        shutil.rmtree(base, ignore_errors=True)
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'what':<{width}}  {'measured':>24}  ratio to bare")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>24}  {ratio}")
    print(f"\nload average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
