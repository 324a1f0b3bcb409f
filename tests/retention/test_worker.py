"""The beat job's task on a real worker: it works a time slice, queues the rest, and /metrics shows the outcome."""

from __future__ import annotations

from bench.old_orders import insert_old_orders
from tests.conftest import start_worker
from tests.helpers import wait_for
from tests.retention.conftest import counter


def test_a_worker_purges_in_slices_until_done_and_the_web_exports_the_count(celery_app, db, user_of, sql, client,
                                                                             tmp_path):
    app = celery_app

    user = user_of()
    with db.engine.begin() as conn:
        insert_old_orders(conn, user.id, 9, 2600)
    # A zero time budget: every task removes one chunk of 2 and queues the next.
    worker = start_worker(tmp_path, RETENTION_TASK_SECONDS="0", RETENTION_CHUNK="2")
    try:
        app.send_task("tasks.maintenance.retention_purge", args=("orders",))
        wait_for(lambda: sql("SELECT count(*) FROM orders") == [(0,)], timeout=60, message="the orders to go")
        wait_for(lambda: sql("SELECT count(*) FROM security_events WHERE kind = 'retention_purge' "
                             "AND details->>'finished' = 'true'") == [(1,)], timeout=30, message="the last slice")
    finally:
        worker.stop()
    slices = sql("SELECT (details->>'removed')::int FROM security_events WHERE kind = 'retention_purge' ORDER BY id")
    assert [row[0] for row in slices] == [2, 2, 2, 2, 1, 0] and counter(sql, "orders") == 9
    body = client.get("/metrics").get_data(as_text=True)
    assert 'shop_retention_purged_total{kind="orders"} 9.0' in body
