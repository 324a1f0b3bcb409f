"""The orders worker's pool: Celery's pool of threads, stopping as a pool of processes does.

Selected with `--pool custom` and CELERY_CUSTOM_WORKER_POOL=tasks.pools:ThreadPool (Celery's way to name a
pool of its own), as the Procfile's `orders` worker does.
"""

from __future__ import annotations

import logging
import os
import threading

from celery.concurrency import thread
from celery.worker import state as worker_state

log = logging.getLogger(__name__)


class ThreadPool(thread.TaskPool):
    """Celery's `threads` pool, except for the tasks a cold shutdown gives up.

    When a stopping worker's grace (WORKER_SHUTDOWN_GRACE) ends with tasks still running, Celery cancels
    them and stops the pool: a process pool kills their processes, and RabbitMQ delivers their messages
    again (acks late) once the worker's connection is gone. A thread cannot be killed: Celery's threads
    pool raises NotImplementedError there, and the interpreter then waits at exit for every task to end on
    its own (a vendor call, up to its timeout). Here a cold stop with tasks still running ends the process
    instead: the held emails' sent marks and the outbox rows not yet published are flushed (briefly; the
    sweep covers what is left), then the process exits at once (`os._exit`), its connections with it, so
    the tasks it cut off are redelivered as a killed process's would be. They are idempotent, as every task
    is for that reason. A warm stop (SIGTERM without REMAP_SIGTERM) still waits for them, as Celery's does;
    `revoke --terminate` cannot stop a task running in a thread, and says so.
    """

    FLUSH_SECONDS = 2.0  # the most the exit waits for each outbox publisher

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._running: set = set()
        self._lock = threading.Lock()

    def on_apply(self, *args, **kwargs):
        result = super().on_apply(*args, **kwargs)
        with self._lock:
            self._running.add(result.f)
        result.f.add_done_callback(self._done)
        return result

    def _done(self, future) -> None:
        with self._lock:
            self._running.discard(future)

    def terminate_job(self, pid, signal=None):
        """Celery's cancel and revoke-terminate: a thread cannot be stopped, so the task runs on (until a cold
        stop ends the process, `on_stop`)."""
        log.warning("a task running in a thread cannot be terminated: it runs on")

    def on_stop(self):
        with self._lock:
            running = len(self._running)
        if worker_state.should_terminate and running:
            self.executor.shutdown(wait=False, cancel_futures=True)
            log.warning("cold stop with tasks still running: the process exits now, their messages go back to "
                        "the queue", extra={"running": running})
            self._exit()
        super().on_stop()

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
