"""A background publisher per process: requests hand their outbox rows over and answer at once.

A daemon thread takes what is pending from a bounded queue, in batches, and
hands each batch to a `deliver` function (the relay's: lock the rows, publish
with broker confirms, mark). The thread starts lazily in the process that
submits, so a process forked after the parent built it (gunicorn with
preload, Celery's prefork pool) starts its own and never shares the parent's
queue, thread or broker connection. When the queue is full the rows are left
to the outbox sweep; at exit `close_all` flushes for a bounded time.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_STOP = object()
_running: list[BackgroundPublisher] = []
_running_lock = threading.Lock()
_atexit_pid: int | None = None


@dataclass(frozen=True)
class Pending:
    """One committed outbox row to publish (plain values: it crosses threads)."""

    id: object
    task: str
    kwargs: dict
    request_id: str | None


class BackgroundPublisher:
    """Feeds `deliver(batch)` from a bounded queue on a daemon thread of this process."""

    def __init__(self, deliver: Callable[[list[Pending]], None], *, queue_size: int = 10_000, batch: int = 100,
                 flush_seconds: float = 5.0):
        self.deliver = deliver
        self.queue_size = queue_size
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self._pid: int | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, items: list[Pending]) -> bool:
        """Queue `items` for publishing; False (they stay for the sweep) when the queue is full or closed."""
        pending = self._ensure_started()
        for n, item in enumerate(items):
            try:
                pending.put_nowait(item)
            except queue.Full:
                self.dropped += len(items) - n
                log.warning("outbox publisher queue full; rows left to the sweep",
                            extra={"count": len(items) - n})
                return False
        return True

    def _ensure_started(self) -> queue.Queue:
        pid = os.getpid()
        if self._pid == pid and self._queue is not None:
            return self._queue
        with self._lock:
            if self._pid != pid:  # first use, or a child forked from a process that had one
                self._queue = queue.Queue(self.queue_size)
                self._thread = threading.Thread(target=self._run, args=(self._queue,), daemon=True,
                                                name="outbox-publisher")
                self._pid = pid
                self._thread.start()
                _register(self)
        return self._queue

    def _run(self, pending: queue.Queue) -> None:
        stopping = False
        while not stopping:
            items = [pending.get()]
            while len(items) < self.batch:
                try:
                    items.append(pending.get_nowait())
                except queue.Empty:
                    break
            if _STOP in items:
                stopping = True
                items = [item for item in items if item is not _STOP]
            self._deliver(items)
        self._drain(pending)

    def _drain(self, pending: queue.Queue) -> None:
        """After stop: deliver whatever is still queued."""
        while True:
            items = []
            while len(items) < self.batch:
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    items.append(item)
            if not items:
                return
            self._deliver(items)

    def _deliver(self, items: list[Pending]) -> None:
        if not items:
            return
        try:
            self.deliver(items)
        except Exception:  # the thread must survive anything: the sweep covers what was not marked
            log.exception("outbox publisher batch failed; rows left to the sweep")

    def pending(self) -> int:
        """Rows queued in this process and not yet handed to the broker."""
        return self._queue.qsize() if self._queue is not None and self._pid == os.getpid() else 0

    def close(self, timeout: float | None = None) -> bool:
        """Stop the thread after it delivered what is queued, waiting at most `timeout` seconds.

        True when everything queued was delivered; what is left stays in the outbox for the sweep.
        """
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return True
        timeout = self.flush_seconds if timeout is None else timeout
        started = time.monotonic()
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        thread.join(max(0.0, timeout - (time.monotonic() - started)))
        if thread.is_alive():
            log.warning("outbox publisher stopped with rows still queued; the sweep will publish them",
                        extra={"count": self._queue.qsize(), "waited": round(time.monotonic() - started, 3)})
            return False
        self._pid = None
        return True


def _register(publisher: BackgroundPublisher) -> None:
    global _atexit_pid
    with _running_lock:
        if _atexit_pid != os.getpid():  # lists inherited across a fork name the parent's threads
            _running.clear()
            _atexit_pid = os.getpid()
            atexit.register(close_all)
        _running.append(publisher)


def close_all(timeout: float | None = None) -> None:
    """Flush and stop every background publisher started in this process (at exit, SIGTERM)."""
    with _running_lock:
        publishers = list(_running) if _atexit_pid == os.getpid() else []
        _running.clear()
    for publisher in publishers:
        publisher.close(timeout)
