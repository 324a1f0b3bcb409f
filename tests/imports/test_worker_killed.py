"""A worker killed with SIGKILL in the middle of a large import, its chunks merging in parallel: the next
worker finishes it, every row imported exactly once, and each product has its last row's name."""

from __future__ import annotations

import os
import signal

from models.db import Database
from tests.conftest import start_beat, start_worker
from tests.helpers import wait_for
from tests.imports.conftest import drop, rows, scalar

ROWS = 60_000
CHUNK = 1_000


def feed(rows_count: int) -> bytes:
    lines = ["sku,product_handle,product_name,description,category_path,price,currency,stock,image_urls,attributes"]
    # A product's three rows differ in name; chunks of 1,000 rows split a product every third chunk.
    lines += [f"SKU-{n:07d},product-{n // 3},Product {n // 3} row {n % 3},Made in a test,Bench > Group {n % 7},"
              f"{n % 500}.25,EUR,{n % 90},,size={n % 5}" for n in range(rows_count)]
    return ("\n".join(lines) + "\n").encode()


def test_sigkill_mid_import_loses_nothing_and_repeats_nothing(settings, tmp_path):
    inbox = tmp_path / "inbox"
    env = {"IMPORT_INBOXES": str(inbox), "IMPORT_POLL_INTERVAL": "1", "IMPORT_CHUNK_ROWS": str(CHUNK),
           "STORAGE_LOCAL_DIR": str(tmp_path / "storage")}
    db = Database(settings.DATABASE_URL)
    worker = start_worker(tmp_path / "first", **env)
    beat = start_beat(tmp_path, **env)
    try:
        drop(inbox, "big.csv", feed(ROWS))
        done_at_kill = wait_for(lambda: (n := scalar(db, "SELECT count(*) FROM import_chunks")) >= 3 and n,
                                timeout=60, interval=0.02, message="a few chunks merged")
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        worker.stop()
        assert done_at_kill < ROWS // CHUNK
        worker = start_worker(tmp_path / "second", **env)
        wait_for(lambda: scalar(db, "SELECT finished_at FROM import_jobs"), timeout=90, interval=0.2,
                 message="the import to finish")
    finally:
        beat.stop()
        worker.stop()
    [job] = rows(db, "SELECT status, rows_total, rows_imported, rows_failed, chunks_total FROM import_jobs")
    assert job == ("succeeded", ROWS, ROWS, 0, ROWS // CHUNK)
    assert scalar(db, "SELECT count(*) FROM product_variants") == ROWS
    assert scalar(db, "SELECT count(DISTINCT sku) FROM product_variants") == ROWS
    assert scalar(db, "SELECT count(*) FROM products") == ROWS // 3
    assert scalar(db, "SELECT count(*) FROM products WHERE name NOT LIKE '% row 2'") == 0
    # both parts ran: the load tasks of parts 0 and 1 were queued
    assert {part for (part,) in rows(db, "SELECT DISTINCT kwargs->>'part' FROM outbox "
                                         "WHERE task = 'tasks.imports.load_chunks'")} == {"0", "1"}
    assert rows(db, "SELECT count(*), sum(rows_imported) FROM import_chunks") == [(ROWS // CHUNK, ROWS)]
    assert scalar(db, "SELECT count(*) FROM import_staging") == 0
    assert (inbox / "processed" / "big.csv").exists()
    db.dispose()
