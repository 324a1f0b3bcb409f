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
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Index, String, Text, delete, event, func, inspect, or_, select, text, update
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


def enqueue(session: Session, task: str, **kwargs) -> OutboxMessage:
    """Record that `task(**kwargs)` must run once this transaction commits.

    Pass ids and plain values only: they are stored as JSON.
    """
    row = OutboxMessage(id=uuid.uuid4(), task=task, request_id=request_id_var.get(),
                        kwargs={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in kwargs.items()})
    session.add(row)
    session.info.setdefault("outbox", []).append(row)
    return row


def enqueue_values(session: Session, task: str, **kwargs) -> dict:
    """Like `enqueue`, for a caller that inserts the row itself with Core (in a statement that writes more).

    Returns the row's column values; the caller must insert them into `OutboxMessage.__table__` in this
    transaction. The row is published after the commit as `enqueue`'s are.
    """
    values = {"id": uuid.uuid4(), "task": task, "request_id": request_id_var.get(),
              "kwargs": {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in kwargs.items()}}
    session.info.setdefault("outbox", []).append(Pending(values["id"], task, values["kwargs"], values["request_id"]))
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

    def __init__(self, db: Database, publish: Publisher, *, background: bool = True, queue_size: int = 10_000,
                 batch: int = 100, flush_seconds: float = 5.0, threads: int = 2):
        self.db = db
        self.publish = publish
        self._paused_until = 0.0
        self.publisher = BackgroundPublisher(self._deliver, queue_size=queue_size, batch=batch,
                                             flush_seconds=flush_seconds, threads=threads,
                                             on_start=getattr(publish, "connect", None)) if background else None
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
        """The background thread's batch: lock the rows, publish each (confirmed), mark sent and failed.

        The rows stay locked while they are published, so the sweep (which skips
        locked rows) never sends one at the same time; rows the sweep already
        published or holds are skipped here.
        """
        with self.db.engine.begin() as conn:
            # A mark lost in a crash only makes the sweeper publish the rows again (tasks are
            # idempotent), so this commit need not wait for its WAL flush.
            conn.execute(text("SET LOCAL synchronous_commit TO off"))
            mine = set(conn.scalars(select(OutboxMessage.id).where(
                OutboxMessage.id.in_([item.id for item in items]), OutboxMessage.published_at.is_(None))
                .with_for_update(skip_locked=True)))
            sent = self._send_all([item for item in items if item.id in mine]) \
                if time.monotonic() >= self._paused_until else []
            if sent:
                conn.execute(update(OutboxMessage).where(OutboxMessage.id.in_(sent))
                             .values(published_at=func.now()))
            failed = mine.difference(sent)
            if failed:  # recorded, so the next sweep takes them at once instead of after OUTBOX_REPUBLISH_AFTER
                conn.execute(update(OutboxMessage).where(OutboxMessage.id.in_(failed)).values(
                    attempts=OutboxMessage.attempts + 1, last_error="publish failed: broker unreachable"))

    def _publish_and_mark(self, rows: list[OutboxMessage]) -> None:
        sent = []
        for row in rows:
            if not self._send(row):
                break
            sent.append(row.id)
        if not sent:
            return
        try:
            with self.db.engine.begin() as conn:
                conn.execute(text("SET LOCAL synchronous_commit TO off"))  # as in _deliver
                conn.execute(update(OutboxMessage).where(OutboxMessage.id.in_(sent))
                             .values(published_at=func.now()))
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
