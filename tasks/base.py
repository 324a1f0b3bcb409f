"""The task base class: retries with backoff for transient vendor errors."""

from __future__ import annotations

import logging

from celery import Task

from integrations.errors import TransientError

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
