"""The worker's own app plus one task whose first runs meet real PostgreSQL errors: `celery -A tests.faults.flaky_app`.

It shows how the task base treats database errors, without touching the shop's tasks.
"""

from __future__ import annotations

from celery import shared_task
from sqlalchemy import text

from tasks.base import ShopTask
from tasks.celery import app, shop  # noqa: F401  (the app `-A` finds; the worker bootstraps there)

FLAKY = "tests.faults.flaky"  # on the default queue, maintenance
SQLSTATES = {"serialization": "serialization_failure", "deadlock": "deadlock_detected",
             "unique": "unique_violation"}


@shared_task(base=ShopTask, bind=True, name=FLAKY, max_retries=3)
def flaky(self, key: str, failures: int, kind: str) -> int:
    """Raise PostgreSQL's `kind` error from inside the task's transaction on the first `failures` runs."""
    run = self.shop.redis.incr(f"{key}:runs")
    with self.session() as session:
        if run <= failures:
            session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'test failure' USING ERRCODE = '{SQLSTATES[kind]}'; "
                                 "END $$"))
    self.shop.redis.set(f"{key}:done", run)
    return run
