"""A background publisher per process: requests hand their outbox rows over and answer at once.

Daemon threads (two by default) take what is pending from a bounded queue, in
batches, and hand each batch to a `deliver` function (the relay's: publish with
broker confirms, then mark the rows, several batches' at once). They start lazily in the process
that submits, so a process forked after its parent built the publisher
(gunicorn with preload, Celery's prefork pool) starts its own and never uses
the parent's queue, threads or broker connections. When the queue is full the
rows are left to the outbox sweep; at exit `close_all` flushes for a bounded
time.
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
    """Feeds `deliver(batch)` from a bounded queue on `threads` daemon threads of this process.

    With two threads, rows that arrive while one waits for its batch's confirms
    are sent at once by the other instead of waiting for that round to end.
    """

    IDLE_POLL = 0.5  # seconds an idle thread waits before it checks whether it should stop

    def __init__(self, deliver: Callable[[list[Pending]], None], *, queue_size: int = 10_000, batch: int = 100,
                 flush_seconds: float = 5.0, threads: int = 2, on_start: Callable[[], None] | None = None,
                 on_idle: Callable[[], None] | None = None, name: str = "outbox publisher",
                 leftover: str = "rows left to the sweep"):
        self.deliver = deliver
        self.name = name  # in thread names and log lines
        self.leftover = leftover  # what becomes of what it could not deliver, for its log lines
        self.on_start = on_start
        self.on_idle = on_idle
        self.queue_size = queue_size
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.threads = max(1, threads)
        self.dropped = 0
        self._pid: int | None = None
        self._queue: queue.Queue | None = None
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def submit(self, items: list[Pending]) -> bool:
        """Queue `items` for publishing; False (they stay for the sweep) when the queue is full."""
        pending = self._ensure_started()
        for n, item in enumerate(items):
            try:
                pending.put_nowait(item)
            except queue.Full:
                self.dropped += len(items) - n
                log.warning(f"{self.name} queue full; {self.leftover}",
                            extra={"count": len(items) - n})
                return False
        return True

    def _ensure_started(self) -> queue.Queue:
        pid = os.getpid()
        if self._pid == pid and self._queue is not None:
            return self._queue
        with self._lock:
            if self._pid != pid:  # first use, or a child forked from a process that had one
                self._queue, self._stopping = queue.Queue(self.queue_size), threading.Event()
                self._workers = [threading.Thread(target=self._run, args=(self._queue, self._stopping),
                                                  daemon=True, name=f"{self.name.replace(' ', '-')}-{n}")
                                 for n in range(self.threads)]
                self._pid = pid
                for worker in self._workers:
                    worker.start()
                _register(self)
        return self._queue

    def _run(self, pending: queue.Queue, stopping: threading.Event) -> None:
        """Deliver batches until asked to stop and nothing is left queued; `on_idle` when nothing came for
        IDLE_POLL seconds and before stopping."""
        if self.on_start is not None:
            try:
                self.on_start()
            except Exception as exc:  # e.g. the broker is away: the first batch tries again
                log.warning(f"{self.name} could not connect yet", extra={"error": repr(exc)})
        while True:
            try:
                first = pending.get(timeout=self.IDLE_POLL)
            except queue.Empty:
                first = None
            if first is None:  # idle, or close()'s wake-up, queued after every row submitted before close()
                self._idle()
                if stopping.is_set():
                    return
                continue
            items = [first]
            while len(items) < self.batch:
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # another thread's wake-up: leave it for that thread
                    with contextlib.suppress(queue.Full):
                        pending.put_nowait(None)
                    break
                items.append(item)
            try:
                self.deliver(items)
            except Exception:  # the thread must survive anything: the sweep covers what was not marked
                log.exception(f"{self.name} batch failed; {self.leftover}")

    def _idle(self) -> None:
        if self.on_idle is not None:
            try:
                self.on_idle()
            except Exception:  # e.g. the database is away: what on_idle left undone is the sweep's
                log.exception(f"{self.name}'s idle work failed")

    def pending(self) -> int:
        """Rows queued in this process and not yet handed to the broker."""
        return self._queue.qsize() if self._queue is not None and self._pid == os.getpid() else 0

    def close(self, timeout: float | None = None) -> bool:
        """Stop the threads once they delivered what is queued, waiting at most `timeout` seconds.

        True when everything queued was delivered; what is left stays in the outbox for the sweep.
        """
        workers = [w for w in self._workers if w.is_alive()] if self._pid == os.getpid() else []
        if not workers:
            return True
        timeout = self.flush_seconds if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._stopping.set()
        for _ in workers:  # wake idle threads now rather than after IDLE_POLL
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if any(worker.is_alive() for worker in workers):
            log.warning(f"{self.name} stopped with items still queued; {self.leftover}",
                        extra={"count": self._queue.qsize(), "waited": timeout})
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
