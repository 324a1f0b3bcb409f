"""Worker wiring, connected by the worker's entry point (tasks/celery.py): JSON logs, request ids on task logs,
dead-letter queues declared, every task name registered, fresh connections in each pool process."""

from __future__ import annotations

import logging

from celery import signals

import celeryconfig
from logconfig import configure_logging, request_id_var, task_id_var
from models import task_names

log = logging.getLogger(__name__)


def connect(shop) -> None:
    """Connect the worker's signal handlers for the process whose resources are `shop`."""
    settings = shop.settings
    handlers = (
        (signals.setup_logging, lambda **_: configure_logging(settings.LOG_LEVEL)),
        (signals.worker_init, _check_task_names),
        (signals.worker_init, lambda sender=None, **_: _declare_queues(sender, settings)),
        (signals.worker_process_init, lambda **_: shop.after_fork()),
        (signals.worker_process_shutdown, _flush_outbox),
        (signals.worker_shutdown, _flush_outbox),
        (signals.worker_process_shutdown, lambda **_: shop.sent_marks.flush()),
        (signals.worker_shutdown, lambda **_: shop.sent_marks.flush()),
        (signals.task_prerun, _bind_ids),
        (signals.task_postrun, _unbind_ids),
    )
    for signal, handler in handlers:
        signal.connect(handler, weak=False)


class UnregisteredTasks(SystemExit):
    """A task name without a task: the worker would drop every such message, so it does not start."""


def _check_task_names(sender=None, **_):
    """Refuse to start when a name in models.task_names has no registered task."""
    if missing := task_names.missing(sender.app.tasks):
        log.critical("task names without a task", extra={"missing": missing})
        raise UnregisteredTasks(f"worker refuses to start: no task registered for {', '.join(missing)} "
                                f"(models/task_names.py names them; tasks/ must define them)")


def _declare_queues(sender, settings):
    """Declare every task queue and its `<queue>.dead` before consuming.

    RabbitMQ drops what it cannot route, so the dead-letter queues must exist
    before the first rejection; and a worker started with `-Q` would
    otherwise declare only the queues it consumes.
    """
    with sender.app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in celeryconfig.make_task_queues(settings) + celeryconfig.make_dead_letter_queues(settings):
            queue.bind(channel).declare()
    log.info("task and dead-letter queues declared")


def _flush_outbox(**_):
    """A stopping pool process (or solo worker) publishes what its outbox publisher still holds, briefly."""
    from models.publishing import close_all

    close_all()


def _bind_ids(task_id=None, task=None, **_):
    request_id = getattr(task.request, "request_id", None) or (task.request.headers or {}).get("request_id")
    request_id_var.set(request_id)
    task_id_var.set(task_id)


def _unbind_ids(**_):
    request_id_var.set(None)
    task_id_var.set(None)
