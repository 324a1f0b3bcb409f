"""The orders worker's pool: Celery's pool of threads, stopping as a pool of processes does.

Selected with `--pool custom` and CELERY_CUSTOM_WORKER_POOL=tasks.pools:ThreadPool (Celery's way to name a
pool of its own), as the Procfile's `orders` worker does.
"""

from __future__ import annotations

import logging
import os
import threading

from celery.concurrency import thread

log = logging.getLogger(__name__)


class ThreadPool(thread.TaskPool):
    """Celery's `threads` pool, except for the tasks a cold shutdown gives up.

    When a stopping worker's grace (WORKER_SHUTDOWN_GRACE) ends with tasks still running, Celery cancels
    them: a process pool kills their processes, and RabbitMQ delivers their messages again (acks late) once
    the worker's connection is gone. A thread cannot be killed: Celery's threads pool raises
    NotImplementedError there, and the interpreter then waits at exit for every task to end on its own (a
    vendor call, up to its timeout). Here the first task given up starts the process's exit instead: the
    held emails' sent marks and the outbox rows not yet published are flushed (briefly; the sweep covers what
    is left), then the process ends at once (`os._exit`), its connections with it, so the tasks it cut off
    are redelivered as a killed process's would be. They are idempotent, as every task is for that reason.
    """

    FLUSH_SECONDS = 2.0  # the most the exit waits for the outbox's publisher

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._giving_up = threading.Event()

    def terminate_job(self, pid, signal=None):
        if self._giving_up.is_set():
            return
        self._giving_up.set()
        log.warning("stopping with tasks still running: the process exits now, their messages go back to the queue")
        # Not in the caller's thread: Celery calls this from its signal handler.
        threading.Thread(target=self._exit, name="exit after giving up tasks", daemon=True).start()

    def on_stop(self):
        # Waiting for the tasks given up would hold the stop until they end; the exit above does not wait.
        self.executor.shutdown(wait=not self._giving_up.is_set(), cancel_futures=True)

    def _exit(self) -> None:
        from models.publishing import close_all

        try:
            self.app.shop.sent_marks.flush()
            close_all(self.FLUSH_SECONDS)
        except Exception:  # noqa: BLE001 - exiting regardless: what is not flushed is left to the sweep
            log.exception("could not flush before exiting")
        finally:
            logging.shutdown()
            os._exit(0)
