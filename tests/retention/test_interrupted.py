"""A purge killed with SIGKILL mid-run: no order is left half deleted, nothing is counted twice, a rerun finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from bench.old_orders import PER_ORDER, insert_old_orders, rows_per_table
from tests.helpers import ROOT, wait_for
from tests.retention.conftest import counter

ORDERS = 20000


def _purge_process(log, chunk: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "retention", "purge", "--only", "orders",
                             "--chunk", str(chunk)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_a_killed_purge_leaves_whole_orders_and_exact_counts_and_resumes(db, user_of, sql, tmp_path):
    user = user_of()
    with db.engine.begin() as conn:
        insert_old_orders(conn, user.id, ORDERS, 2600)

    with open(tmp_path / "first.log", "wb") as log:
        first = _purge_process(log, chunk=20)
        try:
            wait_for(lambda: counter(sql, "orders") >= 2000 or first.poll() is not None, timeout=120,
                     message="the purge to be under way")
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()

    with db.engine.connect() as conn:
        left = rows_per_table(conn)
    removed = counter(sql, "orders")
    assert 0 < left["orders"] < ORDERS
    assert left == {"orders": left["orders"], **{table: left["orders"] * n for table, n in PER_ORDER.items()}}
    assert removed == ORDERS - left["orders"]  # the counter committed with exactly the chunks that did
    assert sql("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
               "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND l.locktype = 'relation' "
               "AND l.relation = 'orders'::regclass") == [(0,)]  # the killed run holds nothing any more

    second = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "retention", "purge", "--only",
                             "orders"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (second.returncode, second.stdout) == (0, f"orders: removed {left['orders']}\n"), second.stderr
    with db.engine.connect() as conn:
        assert set(rows_per_table(conn).values()) == {0}
    assert counter(sql, "orders") == ORDERS
