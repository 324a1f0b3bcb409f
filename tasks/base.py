"""The task base class: retries with backoff for transient vendor errors."""

from __future__ import annotations

import logging

from celery import Task

from integrations.errors import TransientError
from models.operations.dead_letters import note_failure
from tasks import runtime

log = logging.getLogger(__name__)


class ShopTask(Task):
    """Retries TransientError with exponential backoff and jitter.

    Anything else, and a TransientError after the last retry, fails the task
    for good: its message is rejected and RabbitMQ moves it to the queue's
    dead-letter queue.
    """

    autoretry_for = (TransientError,)
    retry_backoff = True
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 5

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        log.error("task failed for good; dead-lettered", extra={
            "task": self.name, "task_id": task_id, "error": repr(exc), "retries": self.request.retries})
        try:  # the dead letter carries no exception: keep it where `flask queues dead` finds it
            note_failure(runtime.redis_client(), task_id, self.name, repr(exc), getattr(einfo, "traceback", None))
        except Exception:
            log.exception("could not note the failure of a dead-lettered task", extra={"task_id": task_id})
