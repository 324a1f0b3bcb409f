"""The transactional outbox: "run task T with these ids", committed with the data.

`enqueue` adds a row inside the caller's transaction. After that transaction
commits, its rows are handed to this process's background publisher, which
publishes them with broker confirms and marks them; a row whose publishing
failed (broker down or slow, queue full, process killed) stays unpublished
and the periodic sweeper publishes it later (at once when the failure was
recorded). Delivery is therefore at least once: tasks are idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import (ARRAY, Index, String, Text, any_, bindparam, cast, delete, event, func, inspect, or_, select,
                        text, update)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from logconfig import request_id_var
from models.db import Base, Database
from models.publishing import BackgroundPublisher, Pending

log = logging.getLogger(__name__)

# publish(task_name, kwargs, task_id, request_id) sends one message or raises. It may also have
# publish.many([(task_name, kwargs, task_id, request_id), ...]), which sends them all or raises, and
# publish.connect(), which opens the calling thread's broker connection ahead of the first publish.
Publisher = Callable[[str, dict, str, "str | None"], None]


# The relay's two writes, each with the ids as `%(ids)s` (psycopg2's parameter style: a list of text).
MARK_SQL = "UPDATE outbox SET published_at = now() WHERE id = ANY(CAST(%(ids)s AS uuid[])) AND published_at IS NULL"
FAILED_SQL = ("UPDATE outbox SET attempts = attempts + 1, last_error = 'publish failed: broker unreachable' "
              "WHERE id = ANY(CAST(%(ids)s AS uuid[])) AND published_at IS NULL")


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    task: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)


def enqueue(session: Session, task: str, *, held: bool = False, **kwargs) -> OutboxMessage:
    """Record that `task(**kwargs)` must run once this transaction commits.

    Pass ids and plain values only: they are stored as JSON. `held`: the row is not handed to the publisher
    after the commit; the caller does the task's work itself and marks the row done (`mark_done`) in the
    transaction that records that work, or hands it over (`Relay.release`) when it could not. A row the
    caller never settles is published by the sweep after OUTBOX_REPUBLISH_AFTER, as any row whose
    publish was lost.
    """
    row = OutboxMessage(id=uuid.uuid4(), task=task, request_id=request_id_var.get(),
                        kwargs={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in kwargs.items()})
    session.add(row)
    if not held:
        session.info.setdefault("outbox", []).append(row)
    return row


def mark_done(parameter: str):
    """Held rows whose work the caller did (their ids in the bound array `parameter`), marked published so that
    they are never sent: a data-modifying CTE for the statement that records that work (in its transaction)."""
    ids = ARRAY(OutboxMessage.id.type)
    return update(OutboxMessage).where(OutboxMessage.id == any_(cast(bindparam(parameter, type_=ids), ids)),
                                       OutboxMessage.published_at.is_(None)) \
        .values(published_at=func.now()).returning(OutboxMessage.id).cte("outbox_done")


def enqueue_values(session: Session, task: str, *, held: bool = False, **kwargs) -> dict:
    """Like `enqueue`, for a caller that inserts the row itself with Core (in a statement that writes more).

    Returns the row's column values; the caller must insert them into `OutboxMessage.__table__` in this
    transaction. The row is published after the commit as `enqueue`'s are, unless `held` (see `enqueue`).
    """
    values = {"id": uuid.uuid4(), "task": task, "request_id": request_id_var.get(),
              "kwargs": {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in kwargs.items()}}
    if not held:
        session.info.setdefault("outbox", []).append(Pending(values["id"], task, values["kwargs"],
                                                             values["request_id"]))
    return values


class Relay:
    """Publishes outbox rows after commit, and sweeps up the ones that failed.

    By default the publishing happens on a background thread of the process
    (`models.publishing`), so a response never waits for the broker's confirm;
    `background=False` publishes in the committing thread, as before.
    """

    # After a failed publish, rows are left to the sweeper for this long instead
    # of each waiting on an unreachable broker.
    PAUSE_AFTER_FAILURE = 5.0
    # Confirmed rows are marked published together, at most this often (seconds) per process.
    MARK_EVERY = 0.2

    def __init__(self, db: Database, publish: Publisher, *, background: bool = True, queue_size: int = 10_000,
                 batch: int = 100, flush_seconds: float = 5.0, threads: int = 2):
        self.db = db
        self.publish = publish
        self._paused_until = 0.0
        self._confirmed: list = []  # ids confirmed by the broker and not marked yet
        self._confirmed_lock = threading.Lock()
        self._mark_due = 0.0
        self.mark_batch = batch
        self.publisher = BackgroundPublisher(self._deliver, queue_size=queue_size, batch=batch,
                                             flush_seconds=flush_seconds, threads=threads,
                                             on_start=getattr(publish, "connect", None),
                                             on_idle=self._mark_confirmed) if background else None
        event.listen(db.sessionmaker, "after_commit", self._after_commit)
        event.listen(db.sessionmaker, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        # ORM rows that were flushed, and rows written with Core (already Pending)
        rows = [r for r in session.info.pop("outbox", []) if isinstance(r, Pending) or inspect(r).persistent]
        if not rows:
            return
        if self.publisher is not None:
            self.publisher.submit([r if isinstance(r, Pending) else Pending(r.id, r.task, r.kwargs, r.request_id)
                                   for r in rows])
        elif time.monotonic() >= self._paused_until:
            self._publish_and_mark(rows)

    @staticmethod
    def _after_rollback(session: Session) -> None:
        session.info.pop("outbox", None)

    def release(self, rows: list[tuple[uuid.UUID, str, dict, str | None]]) -> None:
        """Held rows (id, task, kwargs, request id) whose work their caller could not do: published now, as
        committed rows are (the sweep takes them if this fails)."""
        pending = [Pending(*row) for row in rows]
        if self.publisher is not None:
            self.publisher.submit(pending)
        elif time.monotonic() >= self._paused_until:
            self._publish_and_mark(pending)

    def close(self, timeout: float | None = None) -> bool:
        """Flush what this process still has queued (for at most `timeout` s); the rest is left to the sweep."""
        return self.publisher.close(timeout) if self.publisher is not None else True

    def _send(self, row: OutboxMessage | Pending) -> bool:
        try:
            self.publish(row.task, row.kwargs, str(row.id), row.request_id)
            return True
        except Exception as exc:  # the broker is away: the sweeper retries
            self._paused_until = time.monotonic() + self.PAUSE_AFTER_FAILURE
            log.warning("outbox publish failed; will retry", extra={
                "outbox_id": str(row.id), "task": row.task, "error": repr(exc)})
            return False

    def _send_all(self, items: list[Pending]) -> list:
        """Publish `items` in order; the ids confirmed. With `publish.many`, one wait for all the confirms."""
        many = getattr(self.publish, "many", None)
        if many is None or len(items) < 2:
            sent = []
            for item in items:
                if not self._send(item):
                    break
                sent.append(item.id)
            return sent
        try:
            many([(item.task, item.kwargs, str(item.id), item.request_id) for item in items])
            return [item.id for item in items]
        except Exception as exc:  # some may have arrived: they are sent again by the sweep, and run once
            self._paused_until = time.monotonic() + self.PAUSE_AFTER_FAILURE
            log.warning("outbox batch publish failed; will retry", extra={"count": len(items), "error": repr(exc)})
            return []

    def _deliver(self, items: list[Pending]) -> None:
        """The background thread's batch: publish the rows (confirmed), then note the confirmed ones for the
        next mark (`_mark_confirmed`) and record the failed ones.

        No transaction is held while the broker confirms: the rows are not locked, and the sweep (which only
        takes rows older than OUTBOX_REPUBLISH_AFTER, or with a recorded failure) may send a row that waited
        that long in this queue a second time. Every copy carries the row's id as its task id and the tasks
        are idempotent, so that costs a task run that does nothing, not a second payment or email.
        """
        sent = self._send_all(items) if time.monotonic() >= self._paused_until else []
        if sent:
            with self._confirmed_lock:
                self._confirmed.extend(sent)
                due = len(self._confirmed) >= self.mark_batch or time.monotonic() >= self._mark_due
            if due:
                self._mark_confirmed()
        if failed := [item.id for item in items if item.id not in set(sent)]:
            # recorded, so the next sweep takes them at once instead of after OUTBOX_REPUBLISH_AFTER
            self._run_quickly(FAILED_SQL, failed)

    def _mark_confirmed(self) -> None:
        """Mark every row confirmed so far published: one statement for all, at most every MARK_EVERY s
        per process. Also run by an idle publisher thread and by one that stops, so `close()` leaves
        nothing confirmed unmarked. A mark that never happens (the process killed meanwhile) only makes
        the sweep publish those rows again."""
        with self._confirmed_lock:
            ids, self._confirmed = self._confirmed, []
            self._mark_due = time.monotonic() + self.MARK_EVERY
        if ids:
            self._run_quickly(MARK_SQL, ids)

    def _run_quickly(self, sql: str, ids: list) -> None:
        """`sql` (a statement on the rows `ids`) in one round trip: a transaction of its own whose commit does
        not wait for its WAL flush (a mark lost in a crash only makes the sweep publish the rows again)."""
        with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"BEGIN; SET LOCAL synchronous_commit TO off; {sql}; COMMIT",
                                 {"ids": [str(i) for i in ids]})

    def _publish_and_mark(self, rows: list[OutboxMessage]) -> None:
        sent = []
        for row in rows:
            if not self._send(row):
                break
            sent.append(row.id)
        if not sent:
            return
        try:
            self._run_quickly(MARK_SQL, sent)
        except Exception:  # marking is an optimisation: at worst the sweeper sends again
            log.exception("could not mark outbox rows published")

    def sweep(self, older_than: float, batch: int = 500) -> int:
        """Publish rows whose publish failed, and rows still unpublished `older_than` s after they were written."""
        published = 0
        with self.db.session() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None),
                       or_(OutboxMessage.attempts > 0,
                           OutboxMessage.created_at < func.now() - timedelta(seconds=older_than)))
                .order_by(OutboxMessage.created_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                if not self._send(row):
                    row.attempts += 1
                    row.last_error = "broker unreachable"
                    break
                row.published_at = func.now()
                published += 1
        if published:
            log.info("outbox sweep republished rows", extra={"count": published})
        return published


def relay_options(settings) -> dict:
    """Relay keyword arguments from settings (OUTBOX_PUBLISHER and friends)."""
    return {"background": settings.OUTBOX_PUBLISHER == "background", "queue_size": settings.OUTBOX_QUEUE_SIZE,
            "batch": settings.OUTBOX_PUBLISH_BATCH, "flush_seconds": settings.OUTBOX_FLUSH_SECONDS,
            "threads": settings.OUTBOX_PUBLISHER_THREADS}


def purge_published(db: Database, older_than_days: int) -> int:
    """Delete rows published more than `older_than_days` ago."""
    with db.session() as session:
        result = session.execute(delete(OutboxMessage).where(
            OutboxMessage.published_at < func.now() - timedelta(days=older_than_days)))
        return result.rowcount
