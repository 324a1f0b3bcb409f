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


@app.task(base=ShopTask, name="tasks.maintenance.purge_identity_data")
def purge_identity_data() -> dict:
    """Delete security events past SECURITY_EVENT_RETENTION_DAYS and sessions past their refresh lifetime."""
    from models.security.retention import purge_identity_data as purge

    settings = get_settings()
    return purge(runtime.database(), settings.SECURITY_EVENT_RETENTION_DAYS, settings.REFRESH_TOKEN_TTL)
