"""Worker wiring: JSON logs, request ids on task logs, dead-letter queues declared."""

from __future__ import annotations

import logging

from celery import signals

import celeryconfig
from logconfig import configure_logging, request_id_var, task_id_var
from settings import get_settings

log = logging.getLogger(__name__)


@signals.setup_logging.connect
def _setup_logging(**_):
    configure_logging(get_settings().LOG_LEVEL)


@signals.worker_init.connect
def _declare_queues(sender=None, **_):
    """Declare every task queue and its `<queue>.dead` before consuming.

    RabbitMQ drops what it cannot route, so the dead-letter queues must exist
    before the first rejection; and a worker started with `-Q` would
    otherwise declare only the queues it consumes.
    """
    settings = get_settings()
    with sender.app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in celeryconfig.make_task_queues(settings) + celeryconfig.make_dead_letter_queues(settings):
            queue.bind(channel).declare()
    log.info("task and dead-letter queues declared")


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _flush_outbox(**_):
    """A stopping pool process (or solo worker) publishes what its outbox publisher still holds, briefly."""
    from models.publishing import close_all

    close_all()


@signals.task_prerun.connect
def _bind_ids(task_id=None, task=None, **_):
    request_id = getattr(task.request, "request_id", None) or (task.request.headers or {}).get("request_id")
    request_id_var.set(request_id)
    task_id_var.set(task_id)


@signals.task_postrun.connect
def _unbind_ids(**_):
    request_id_var.set(None)
    task_id_var.set(None)


@signals.before_task_publish.connect
def _expire_in_the_worker(properties=None, **_):
    """Leave a task's `expires` to the worker, which skips it; without the AMQP expiration Celery adds,
    RabbitMQ would move every expired beat job to `<queue>.dead`, where only failures belong."""
    if properties is not None:
        properties.pop("expiration", None)
