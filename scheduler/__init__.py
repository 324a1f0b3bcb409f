"""The beat schedule. The bodies of periodic jobs live in `tasks.maintenance`, `tasks.imports` and `tasks.backups`."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

from models import task_names as names


def beat_schedule(settings) -> dict:
    """Every periodic job, its task and how often it runs."""
    return {
        "outbox-sweep": {
            "task": names.SWEEP_OUTBOX,
            "schedule": timedelta(seconds=settings.OUTBOX_SWEEP_INTERVAL),
            # A sweep that waited through a broker outage is useless once newer ones run.
            "options": {"expires": settings.OUTBOX_SWEEP_INTERVAL * 3},
        },
        "outbox-purge": {
            "task": names.PURGE_OUTBOX,
            "schedule": crontab(hour=3, minute=17),
        },
        # Imports and exports
        "imports-poll-inboxes": {
            "task": names.POLL_INBOXES,
            "schedule": timedelta(seconds=settings.IMPORT_POLL_INTERVAL),
            "options": {"expires": settings.IMPORT_POLL_INTERVAL * 3},
        },
        "exports-nightly": {
            "task": names.NIGHTLY_EXPORTS,
            "schedule": crontab(hour=settings.EXPORT_NIGHTLY_HOUR, minute=7),
        },
        "search-sweep-pending": {
            "task": names.SWEEP_PENDING_INDEXING,
            "schedule": timedelta(seconds=settings.SEARCH_SWEEP_INTERVAL),
            "options": {"expires": settings.SEARCH_SWEEP_INTERVAL * 2},
        },
        "api-keys-flush-usage": {
            "task": names.FLUSH_API_KEY_USAGE,
            "schedule": timedelta(seconds=settings.API_KEY_USAGE_FLUSH_INTERVAL),
            "options": {"expires": settings.API_KEY_USAGE_FLUSH_INTERVAL * 2},
        },
        **order_jobs(settings),
        **retention_jobs(),
        **backup_jobs(settings),
    }


def order_jobs(settings) -> dict:
    """Orders: expire unpaid ones, poll tracking, keep popular shipping rates warm."""
    return {
        "orders-expire-unpaid": {
            "task": names.EXPIRE_UNPAID_ORDERS,
            "schedule": timedelta(seconds=settings.ORDER_EXPIRY_INTERVAL),
            "options": {"expires": settings.ORDER_EXPIRY_INTERVAL * 2},
        },
        "orders-poll-tracking": {
            "task": names.POLL_TRACKING,
            "schedule": timedelta(seconds=settings.TRACKING_POLL_INTERVAL),
            "options": {"expires": settings.TRACKING_POLL_INTERVAL},
        },
        "shipping-refresh-rates": {
            "task": names.REFRESH_RATES,
            "schedule": timedelta(minutes=30),
            "options": {"expires": 1800},
        },
    }


def retention_jobs() -> dict:
    """One beat job per retention kind (docs/retention.md), nightly, a few minutes apart so they don't compete."""
    from models.retention.purges import KINDS

    return {f"retention-{kind.replace('_', '-')}": {
        "task": names.RETENTION_PURGE,
        "schedule": crontab(hour=4, minute=3 * index),
        "args": (kind,),
        "options": {"expires": 3600},
    } for index, kind in enumerate(KINDS)}
def backup_jobs(settings) -> dict:
    """Backups: weekly full (Sunday), daily diff (other days), a frequent check, a weekly restore drill."""
    hour = settings.BACKUP_HOUR
    return {
        "backups-full": {"task": names.BACKUP_FULL, "schedule": crontab(day_of_week=0, hour=hour, minute=3)},
        "backups-diff": {"task": names.BACKUP_DIFF, "schedule": crontab(day_of_week="1-6", hour=hour, minute=3)},
        "backups-check": {
            "task": names.BACKUP_CHECK,
            "schedule": timedelta(seconds=settings.BACKUP_CHECK_INTERVAL),
            "options": {"expires": settings.BACKUP_CHECK_INTERVAL},
        },
        "backups-drill": {"task": names.BACKUP_DRILL,
                          "schedule": crontab(day_of_week=0, hour=(hour + 4) % 24, minute=3)},
    }
