"""The maintenance queue: periodic housekeeping run by beat, and deleting files of removed rows."""

from __future__ import annotations

from celery import shared_task

from models.outbox import purge_published
from models import task_names as names
from tasks import runtime
from tasks.base import ShopTask


@shared_task(base=ShopTask, name=names.SWEEP_OUTBOX)
def sweep_outbox() -> int:
    """Publish outbox rows that were not published at commit (the broker was away)."""
    return runtime.relay().sweep(older_than=runtime.settings().OUTBOX_REPUBLISH_AFTER)


@shared_task(base=ShopTask, name=names.DELETE_FILES)
def delete_files(keys: list[str]) -> int:
    """Delete the files of rows that are gone (product images); retried while storage is away."""
    storage = runtime.shop().storage
    for key in keys:  # deleting a missing key is no error, so a retry redoes the whole list safely
        storage.delete(key)
    return len(keys)


@shared_task(base=ShopTask, name=names.PURGE_OUTBOX)
def purge_outbox() -> int:
    """Delete published outbox rows past their retention."""
    return purge_published(runtime.database(), runtime.settings().OUTBOX_RETENTION_DAYS)


@shared_task(base=ShopTask, name=names.FLUSH_API_KEY_USAGE)
def flush_api_key_usage() -> int:
    """Beat: add API-key uses counted in Redis to the keys' rows, in one batch; the number of uses added."""
    from models.users.key_access import KeyAccess

    return KeyAccess(runtime.redis_client()).flush_usage(runtime.database().session)


@shared_task(base=ShopTask, name=names.RETENTION_PURGE)
def retention_purge(kind: str) -> dict:
    """Beat: remove one kind's expired data for up to RETENTION_TASK_SECONDS, then queue the rest as a new task."""
    from imports.retention import StoredFiles
    from models.retention.purges import Periods, purge

    settings = runtime.settings()
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
