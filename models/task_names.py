"""Every task's name, in one place: the enqueuers (models/, imports/), the definitions (tasks/) and the
beat schedule (scheduler/) all use these constants, and a worker refuses to start unless each is registered."""

from __future__ import annotations

# payments
START_PAYMENT = "tasks.payments.start_payment"
PROCESS_PAYMENT_EVENT = "tasks.payments.process_event"
REFUND_PAYMENT = "tasks.payments.refund_payment"
EXPIRE_UNPAID_ORDERS = "tasks.payments.expire_unpaid_orders"
# shipping
BUY_LABEL = "tasks.shipping.buy_label"
POLL_TRACKING = "tasks.shipping.poll_tracking"
REFRESH_RATES = "tasks.shipping.refresh_rates"
QUOTE_RATES = "tasks.shipping.quote_rates"
# emails
SEND_EMAIL = "tasks.emails.send_email"
# search
INDEX_PRODUCTS = "tasks.search.index_products"
INDEX_PENDING = "tasks.search.index_pending"
SWEEP_PENDING_INDEXING = "tasks.search.sweep_pending"
# imports and exports
POLL_INBOXES = "tasks.imports.poll_inboxes"
SCAN_FILE = "tasks.imports.scan_file"
LOAD_CHUNKS = "tasks.imports.load_chunks"
FINISH_IMPORT = "tasks.imports.finish_import"
FETCH_IMAGES = "tasks.imports.fetch_images"
STORE_IMAGE = "tasks.imports.store_image"
RUN_EXPORT = "tasks.imports.run_export"
NIGHTLY_EXPORTS = "tasks.imports.nightly_exports"
# maintenance
SWEEP_OUTBOX = "tasks.maintenance.sweep_outbox"
PURGE_OUTBOX = "tasks.maintenance.purge_outbox"
RETENTION_PURGE = "tasks.maintenance.retention_purge"
DELETE_FILES = "tasks.maintenance.delete_files"
FLUSH_API_KEY_USAGE = "tasks.maintenance.flush_api_key_usage"
# backups (on the maintenance queue)
BACKUP_FULL = "tasks.backups.full"
BACKUP_DIFF = "tasks.backups.diff"
BACKUP_CHECK = "tasks.backups.check"
BACKUP_DRILL = "tasks.backups.drill"

# The modules a worker imports to register the tasks above.
TASK_MODULES = ("tasks.emails", "tasks.maintenance", "tasks.search", "tasks.payments", "tasks.shipping",
                "tasks.imports", "tasks.backups")


def all_names() -> set[str]:
    """Every task name defined above."""
    return {value for key, value in globals().items() if key.isupper() and isinstance(value, str)}


def missing(registered) -> list[str]:
    """The names above that `registered` (a Celery app's task registry) lacks."""
    return sorted(all_names() - set(registered))
