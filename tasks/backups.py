"""Backup jobs run by beat on the maintenance queue: weekly full, daily diff, frequent check, weekly drill.

The bodies live in `models.backups.jobs` (the CLI runs the same ones); here a
repository that cannot be reached is retried later, a job that finds another
one running does nothing, and any other failure is final (it was recorded
and mailed to BACKUP_ALERT_EMAIL by the job itself).
"""

from __future__ import annotations

import logging

from celery import shared_task

from integrations.backups import RepoUnreachable
from models.backups import jobs
from models import task_names as names
from tasks import runtime
from tasks.base import ShopTask

log = logging.getLogger(__name__)
# Time limits come from BACKUP_TIME_LIMIT through celeryconfig.task_options.


def _run(task, job: str, body) -> dict:
    settings = runtime.settings()
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


@shared_task(base=ShopTask, bind=True, name=names.BACKUP_FULL, queue="maintenance")
def full(self) -> dict:
    """A full backup, then a verify of the repository."""
    return _run(self, "full", lambda db, settings: jobs.run_backup(db, settings, "full"))


@shared_task(base=ShopTask, bind=True, name=names.BACKUP_DIFF, queue="maintenance")
def diff(self) -> dict:
    """A differential backup (changes since the last full), then a verify."""
    return _run(self, "diff", lambda db, settings: jobs.run_backup(db, settings, "diff"))


@shared_task(base=ShopTask, bind=True, name=names.BACKUP_CHECK, queue="maintenance")
def check(self) -> dict:
    """WAL reaches the archive; records the archive lag and the newest backup for /metrics."""
    return _run(self, "check", jobs.check)


@shared_task(base=ShopTask, bind=True, name=names.BACKUP_DRILL, queue="maintenance")
def drill(self) -> dict:
    """Restore the newest backup into a scratch cluster and compare every table with the source."""
    return _run(self, "drill", jobs.drill)
