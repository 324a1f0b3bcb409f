"""The one task base: the session and its transaction, retries of transient errors with backoff, the log."""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager

from celery import Task
from celery.exceptions import Retry
from celery.utils.time import get_exponential_backoff_interval
from sqlalchemy.exc import DBAPIError, OperationalError

from integrations.errors import TransientError
from models.operations.dead_letters import note_failure
from tasks import runtime

log = logging.getLogger(__name__)

# PostgreSQL's deadlock detected, serialization failure: the same work succeeds when run again.
RETRYABLE_SQLSTATES = {"40P01", "40001"}


def transient(exc: BaseException) -> bool:
    """Whether running the task again later may well succeed: a vendor's or the database's passing trouble."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, DBAPIError):
        return (isinstance(exc, OperationalError) or exc.connection_invalidated
                or getattr(exc.orig, "pgcode", None) in RETRYABLE_SQLSTATES)
    return False


class ShopTask(Task):
    """Every task's base.

    A transient error (TransientError from an integration; a lost database
    connection, a failover, a deadlock or serialization failure) retries the
    task with exponential backoff and jitter; the work is idempotent. Anything
    else, and a transient error after the last retry, fails the task for good:
    its message is rejected and RabbitMQ moves it to the queue's dead-letter
    queue. Retries and failures are counted by tasks.metrics.
    """

    retry_backoff = 1
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 5

    @property
    def shop(self):
        """The resources bootstrap built for this task's app."""
        return self.app.shop

    @contextmanager
    def session(self):
        """A session whose transaction commits when the block ends and rolls back on an error."""
        with self.shop.db.session() as session:
            yield session

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if not transient(exc):
                raise
            countdown = get_exponential_backoff_interval(factor=max(1, int(self.retry_backoff)),
                                                         retries=self.request.retries,
                                                         maximum=self.retry_backoff_max, full_jitter=self.retry_jitter)
            log.warning("task hit a transient error; retrying", extra={
                "task": self.name, "retries": self.request.retries, "countdown": countdown, "error": repr(exc)[:500]})
            raise self.retry(exc=exc, countdown=countdown) from None

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        log.error("task failed for good; dead-lettered", extra={
            "task": self.name, "task_id": task_id, "error": repr(exc), "retries": self.request.retries})
        try:  # the dead letter carries no exception: keep it where `flask queues dead` finds it
            note_failure(runtime.redis_client(), task_id, self.name, repr(exc), getattr(einfo, "traceback", None))
        except Exception:
            log.exception("could not note the failure of a dead-lettered task", extra={"task_id": task_id})


def run_again_in(task: ShopTask, seconds: float, why: str) -> Retry:
    """Deliver this task again in `seconds` (whole, at least 1: delayed delivery counts whole seconds) without
    spending one of its retries: waiting is not failing."""
    seconds = max(1, math.ceil(seconds))
    task.signature_from_request(task.request, countdown=seconds, retries=task.request.retries).apply_async()
    return Retry(why, when=seconds)
