"""The maintenance queue: periodic housekeeping run by beat."""

from __future__ import annotations

from models.outbox import purge_published
from settings import get_settings
from tasks import app, runtime
from tasks.base import ShopTask


@app.task(base=ShopTask, name="tasks.maintenance.sweep_outbox")
def sweep_outbox() -> int:
    """Publish outbox rows that were not published at commit (the broker was away)."""
    return runtime.relay().sweep(older_than=get_settings().OUTBOX_REPUBLISH_AFTER)


@app.task(base=ShopTask, name="tasks.maintenance.purge_outbox")
def purge_outbox() -> int:
    """Delete published outbox rows past their retention."""
    return purge_published(runtime.database(), get_settings().OUTBOX_RETENTION_DAYS)


@app.task(base=ShopTask, name="tasks.maintenance.flush_api_key_usage")
def flush_api_key_usage() -> int:
    """Beat: add API-key uses counted in Redis to the keys' rows, in one batch; the number of uses added."""
    from models.users.key_access import KeyAccess

    return KeyAccess(runtime.redis_client()).flush_usage(runtime.database().session)


@app.task(base=ShopTask, name="tasks.maintenance.retention_purge")
def retention_purge(kind: str) -> dict:
    """Beat: remove one kind's expired data for up to RETENTION_TASK_SECONDS, then queue the rest as a new task."""
    from imports.retention import StoredFiles
    from models.retention.purges import Periods, purge

    settings = get_settings()
    files = StoredFiles(settings)
    try:
        outcome = purge(runtime.database(), Periods.from_settings(settings), kind, chunk=settings.RETENTION_CHUNK,
                        seconds=settings.RETENTION_TASK_SECONDS, pause_ratio=settings.RETENTION_PAUSE_RATIO,
                        files=files)
    finally:
        files.close()
    if not outcome.finished:  # no task runs for minutes: the next one carries on where this stopped
        retention_purge.delay(kind)
    return {"kind": kind, "removed": outcome.removed, "finished": outcome.finished}
