"""Backup and restore figures on 1M products + 1M orders: full backup time and size, restore time (RTO),
and the RPO when the primary is SIGKILLed under a checkout-shaped write load.

Everything runs on a scratch PostgreSQL 15 cluster (as `postgres`, on free loopback ports) that the
script makes and deletes; the machine's own server is not touched. The bare baseline, measured in the
same run, is a plain `cp -a` of the same data folder: what moving the bytes costs with no backup tool.

    python -m bench.backups [--rows 1000000] [--seconds 90] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

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
"""


def timed(fn, *args, **kwargs) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def checkout_load(url: str, clients: int, stop: threading.Event, committed: list) -> list[threading.Thread]:
    """Clients inserting orders one transaction each; `committed` gets the newest acknowledged commit time."""
    def client():
        engine = create_engine(url, pool_size=1)
        try:
            while not stop.is_set():
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO orders (user_id, currency, subtotal, total, stock_state) VALUES "
                                      "('00000000-0000-0000-0000-000000000001', 'EUR', 10, 14.95, 'load')"))
                committed.append(datetime.now(UTC))
        except Exception:  # noqa: S110  (the server was killed under us: that is the point)
            pass
        finally:
            engine.dispose()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=75.0,
                        help="checkout load before the SIGKILL (longer than archive_timeout, for a steady state)")
    parser.add_argument("--clients", type=int, default=4)
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
        from web.cli import alembic_config, ensure_database
        from alembic import command
        ensure_database(settings.BACKUP_DATABASE_URL)
        tool.stanza_create()  # before any WAL is pushed: a failed push is retried only a minute later
        command.upgrade(alembic_config(settings.BACKUP_DATABASE_URL), "head")
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

        # RPO: checkout load, SIGKILL the whole server, restore everything the archive holds.
        stop, committed = threading.Event(), []
        threads = checkout_load(settings.BACKUP_DATABASE_URL, args.clients, stop, committed)
        time.sleep(args.seconds)  # the load runs for a fixed time by design: this is a benchmark, not a test
        pid = int((source.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        subprocess.run(["pkill", "-KILL", "-P", str(pid)], check=False)  # its backends and archiver, by parent id
        stop.set()
        for thread in threads:
            thread.join(10)
        last_commit = max(committed)
        restored.prepare()
        restore_seconds = timed(tool.restore, restored.data_dir)
        recovery = time.perf_counter()
        restored.configure()
        restored.start()
        restored.wait_promoted()
        replay_seconds = time.perf_counter() - recovery
        engine = create_engine(restored.url("shop"))
        with engine.connect() as conn:
            # Nothing of the load survived: the newest order of the seed is what was kept.
            recovered, newest_order = conn.execute(text(
                "SELECT count(*) FILTER (WHERE stock_state = 'load'), max(created_at) FROM orders")).one()
        engine.dispose()
        rpo = (last_commit.replace(tzinfo=None) - newest_order).total_seconds() if newest_order else float("nan")

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
            (f"checkout load: {args.clients} clients, {args.seconds:.0f} s", f"{len(committed):,} committed", ""),
            ("  recovered after SIGKILL", f"{recovered:,} orders", ""),
            ("RPO (last acknowledged commit - newest recovered; target <= 60 s)", f"{rpo:,.1f} s",
             "met" if rpo <= 60 else "NOT met"),
        ]
    finally:
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
