"""Backup jobs run by beat on the maintenance queue: weekly full, daily diff, frequent check, weekly drill.

The bodies live in `models.backups.jobs` (the CLI runs the same ones); here a
repository that cannot be reached is retried later, a job that finds another
one running does nothing, and any other failure is final (it was recorded
and mailed to BACKUP_ALERT_EMAIL by the job itself).
"""

from __future__ import annotations

import logging

from integrations.backups import RepoUnreachable
from models.backups import jobs
from settings import get_settings
from tasks import app, runtime
from tasks.base import ShopTask

log = logging.getLogger(__name__)
LIMITS = {"time_limit": get_settings().BACKUP_TIME_LIMIT, "soft_time_limit": get_settings().BACKUP_TIME_LIMIT - 60}


def _run(task, job: str, body) -> dict:
    settings = get_settings()
    try:
        outcome = body(runtime.database(), settings)
    except jobs.JobBusy:
        log.info("backup job skipped: another one holds the lock", extra={"job": job})
        return {"job": job, "status": "skipped"}
    except RepoUnreachable as exc:
        log.warning("backup repository unreachable; retrying later", extra={"job": job, "error": str(exc)[:500]})
        raise task.retry(exc=exc, countdown=settings.BACKUP_RETRY_AFTER) from None
    log.info("backup job done", extra={"job": job, "label": outcome.backup_label})
    return {"job": job, "status": outcome.status, "label": outcome.backup_label}


@app.task(base=ShopTask, bind=True, name="tasks.backups.full", queue="maintenance", **LIMITS)
def full(self) -> dict:
    """A full backup, then a verify of the repository."""
    return _run(self, "full", lambda db, settings: jobs.run_backup(db, settings, "full"))


@app.task(base=ShopTask, bind=True, name="tasks.backups.diff", queue="maintenance", **LIMITS)
def diff(self) -> dict:
    """A differential backup (changes since the last full), then a verify."""
    return _run(self, "diff", lambda db, settings: jobs.run_backup(db, settings, "diff"))


@app.task(base=ShopTask, bind=True, name="tasks.backups.check", queue="maintenance", **LIMITS)
def check(self) -> dict:
    """WAL reaches the archive; records the archive lag and the newest backup for /metrics."""
    return _run(self, "check", jobs.check)


@app.task(base=ShopTask, bind=True, name="tasks.backups.drill", queue="maintenance", **LIMITS)
def drill(self) -> dict:
    """Restore the newest backup into a scratch cluster and compare every table with the source."""
    return _run(self, "drill", jobs.drill)
