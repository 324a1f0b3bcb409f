"""The beat schedule. The bodies of periodic jobs live in `tasks.maintenance` and `tasks.imports`."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab


def beat_schedule(settings) -> dict:
    """Every periodic job, its task and how often it runs."""
    return {
        "outbox-sweep": {
            "task": "tasks.maintenance.sweep_outbox",
            "schedule": timedelta(seconds=settings.OUTBOX_SWEEP_INTERVAL),
            # A sweep that waited through a broker outage is useless once newer ones run.
            "options": {"expires": settings.OUTBOX_SWEEP_INTERVAL * 3},
        },
        "outbox-purge": {
            "task": "tasks.maintenance.purge_outbox",
            "schedule": crontab(hour=3, minute=17),
        },
        # Imports and exports
        "imports-poll-inboxes": {
            "task": "tasks.imports.poll_inboxes",
            "schedule": timedelta(seconds=settings.IMPORT_POLL_INTERVAL),
            "options": {"expires": settings.IMPORT_POLL_INTERVAL * 3},
        },
        "exports-nightly": {
            "task": "tasks.imports.nightly_exports",
            "schedule": crontab(hour=settings.EXPORT_NIGHTLY_HOUR, minute=7),
        },
    }
