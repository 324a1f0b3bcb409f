"""Held emails' sent marks, committed together per process instead of in a transaction per email."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from datetime import datetime

from models.db import Database
from models.emails.actions import finish_held

log = logging.getLogger(__name__)


class SentMarks:
    """What `finish_held` writes, gathered in this process: the held emails the provider accepted (id ->
    (attempt mark, provider's id)) and their outbox rows, committed in one statement by the first `add`
    at least EVERY seconds after the last commit (or once BATCH wait), by a timer thread when no `add`
    comes, and when the process stops (`flush`: the worker's shutdown signals, atexit).

    On the money path this turns the email's own transaction, one per paid order, into one per worker
    process every EVERY seconds. The email has left when it is added here: only its `sent` status waits.
    A mark never committed (the process killed first, the database away) leaves the message `sending`
    with its outbox row unpublished, as a task killed between its send and its mark did: the sweep
    publishes the row after OUTBOX_REPUBLISH_AFTER and `send_email` asks the provider once
    EMAIL_ACCEPTANCE_LAG has passed, finds the message accepted and marks it sent, never sending it twice.
    """

    EVERY = 0.25
    BATCH = 200
    KEEP_AFTER_FAILURE = 10_000  # marks kept for the next commit when one fails; beyond, left to the sweep

    def __init__(self, db: Database, every: float = EVERY, batch: int = BATCH):
        self.db = db
        self.every = every
        self.batch = batch
        self._forked()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (marks := ref()) is not None and marks._forked())
        atexit.register(lambda: (marks := ref()) is not None and marks.flush())  # a forked child inherits it

    def add(self, sent: dict[uuid.UUID, tuple[datetime, str | None]], outbox_ids: list[uuid.UUID]) -> None:
        """Marks to commit: now when due, else within EVERY seconds."""
        with self._lock:
            self._sent.update(sent)
            self._outbox.extend(outbox_ids)
            due = len(self._sent) >= self.batch or time.monotonic() >= self._due
            if not due and self._timer is None:
                self._timer = threading.Timer(self.every, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def flush(self) -> int:
        """Commit every mark gathered so far, in one statement; how many messages it marked."""
        sent, outbox_ids = self._take()
        if not sent:
            return 0
        try:
            with self.db.session() as session:  # its commit does not wait for the WAL flush (finish_held)
                finish_held(session, sent, outbox_ids)
        except Exception:  # noqa: BLE001 - a timer thread must survive anything; the sweep covers the rest
            log.exception("could not mark held emails sent; kept for the next commit",
                          extra={"count": len(sent)})
            with self._lock:
                if len(self._sent) + len(sent) <= self.KEEP_AFTER_FAILURE:
                    self._sent = {**sent, **self._sent}
                    self._outbox = [*outbox_ids, *self._outbox]
            return 0
        return len(sent)

    def close(self, flush: bool = True) -> int:
        """Stop the timer and commit what is gathered (what the process's shutdown does); `flush=False`
        drops it instead, as a killed process would lose it."""
        if flush:
            return self.flush()
        self._take()
        return 0

    def pending(self) -> int:
        """Marks gathered in this process and not committed yet."""
        with self._lock:
            return len(self._sent)

    def _take(self) -> tuple[dict, list]:
        """Everything gathered, the gathering started afresh and its timer stopped."""
        with self._lock:
            sent, outbox_ids, timer = self._sent, self._outbox, self._timer
            self._sent, self._outbox, self._timer = {}, [], None
            self._due = time.monotonic() + self.every
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        return sent, outbox_ids

    def _forked(self) -> None:
        """A new process's state: no marks (a worker pool's parent sends none), no timer, and a lock nobody
        holds (one another thread held at the fork would stay held in the child)."""
        self._lock = threading.Lock()
        self._sent: dict[uuid.UUID, tuple[datetime, str | None]] = {}
        self._outbox: list[uuid.UUID] = []
        self._timer: threading.Timer | None = None
        self._due = 0.0
