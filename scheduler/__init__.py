"""The beat schedule. The bodies of periodic jobs live in `tasks.maintenance`."""

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
        "identity-purge": {
            "task": "tasks.maintenance.purge_identity_data",
            "schedule": crontab(hour=3, minute=41),
        },
    }
