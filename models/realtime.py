"""Real-time events: what committed transactions tell connected clients, through Redis pub/sub.

`Broadcaster` watches a Database's sessions: order events and import-job
changes flushed in a transaction are published once it commits (never before,
never for a rolled-back one). Publishing is best effort: a client that missed
an order event gets it on reconnect from the order events table
(`events_after`), which is the record; import progress is a state that the
next change repeats.

The committing thread only queues the messages: one background thread per
process publishes them in batches (one pipelined round trip for whatever
queued meanwhile), in the order they were committed, so a request never waits
for Redis to announce its change.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

import redis as redis_lib
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from models.db import Database
from models.imports.tables import ImportJob
from models.orders.tables import Order, OrderEvent
from models.publishing import BackgroundPublisher

log = logging.getLogger(__name__)

ORDERS_CHANNEL = "realtime:orders"
IMPORTS_CHANNEL = "realtime:imports"
JOB_FIELDS = ("status", "rows_total", "rows_imported", "rows_failed", "message")


def order_event_body(row: OrderEvent) -> dict:
    """An order event as clients receive it (the REST history's fields, plus the order id)."""
    return _event_body(row.id, row.order_id, row.kind, row.from_status, row.to_status, row.reason, row.data,
                       inspect(row).dict.get("created_at"))


def _event_body(event_id, order_id, kind, from_status, to_status, reason, data, created_at) -> dict:
    return {"type": "order.event", "id": event_id, "orderId": str(order_id), "kind": kind,
            "fromStatus": str(from_status) if from_status else None,
            "toStatus": str(to_status) if to_status else None, "reason": reason, "data": data,
            "createdAt": _iso(created_at)}


def announce_order_event(session: Session, user_id: uuid.UUID, order_id: uuid.UUID, row: dict) -> None:
    """Publish an order event written with Core (no ORM object to watch) once this transaction commits.

    `row` holds the event's columns as inserted, with its `id` and `created_at` from RETURNING.
    """
    body = _event_body(row["id"], order_id, row["kind"], row.get("from_status"), row.get("to_status"),
                       row.get("reason", ""), row.get("data", {}), row.get("created_at"))
    session.info.setdefault("realtime", {"events": [], "jobs": {}})["events"].append((user_id, order_id, body))


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def events_after(session: Session, user_id: uuid.UUID, after_id: int, limit: int) -> list[dict]:
    """The events of `user_id`'s orders with an id above `after_id`, oldest first (what a reconnect missed)."""
    rows = session.scalars(select(OrderEvent).join(Order, Order.id == OrderEvent.order_id)
                           .where(Order.user_id == user_id, OrderEvent.id > after_id)
                           .order_by(OrderEvent.id).limit(limit))
    return [order_event_body(row) for row in rows]


class Broadcaster:
    """Publishes a transaction's order events and import-job changes after it commits."""

    QUEUED = 10_000  # messages waiting in a process at most; more are dropped (clients replay from the table)

    def __init__(self, db: Database, redis: redis_lib.Redis):
        self.redis = redis
        # One thread keeps the commit order; it starts with the first message of each process (fork-safe).
        self.sender = BackgroundPublisher(self._publish, queue_size=self.QUEUED, batch=500, threads=1,
                                          flush_seconds=1.0, name="real-time publisher",
                                          leftover="messages dropped (clients replay them from the tables)")
        event.listen(db.sessionmaker, "after_flush", self._after_flush)
        event.listen(db.sessionmaker, "after_commit", self._after_commit)
        event.listen(db.sessionmaker, "after_rollback", self._after_rollback)

    @staticmethod
    def _after_flush(session: Session, _context) -> None:
        # Bodies are taken now, while ids and values are fresh; they are sent only after the commit.
        found = session.info.setdefault("realtime", {"events": [], "jobs": {}})
        new_orders = None
        for obj in session.new:
            if isinstance(obj, OrderEvent):
                order = session.identity_map.get(inspect(Order).identity_key_from_primary_key((obj.order_id,)))
                if order is None:  # an order inserted in this same flush is not in the identity map yet
                    if new_orders is None:
                        new_orders = {o.id: o for o in session.new if isinstance(o, Order)}
                    order = new_orders.get(obj.order_id)
                found["events"].append((order.user_id if order is not None else None, obj.order_id,
                                        order_event_body(obj)))
        for obj in (*session.new, *session.dirty):
            if isinstance(obj, ImportJob) and (body := _job_body(obj)):
                found["jobs"][obj.id] = body

    @staticmethod
    def _after_rollback(session: Session) -> None:
        session.info.pop("realtime", None)

    def _after_commit(self, session: Session) -> None:
        found = session.info.pop("realtime", None)
        if not found or not (found["events"] or found["jobs"]):
            return
        try:
            messages = self._order_messages(session, found["events"])
            messages += [(IMPORTS_CHANNEL, json.dumps(body, default=str)) for body in found["jobs"].values()]
            self.sender.submit(messages)
        except Exception:  # best effort: clients replay order events from the table on reconnect
            log.warning("real-time events not published", exc_info=True)

    def _publish(self, messages: list[tuple[str, str]]) -> None:
        """Send a batch as one packed write and read its replies: one round trip (the background thread's work).

        A plain PUBLISH per message on a pooled connection; redis-py's pipeline object cost more CPU than the
        publish itself. A failed batch is not sent again (best effort, as above).
        """
        pool = self.redis.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(connection.pack_commands([("PUBLISH", channel, body)
                                                                     for channel, body in messages]))
            for _ in messages:
                connection.read_response()
        except Exception:
            connection.disconnect()  # a reply may still be on its way: the connection is not used again
            log.warning("real-time events not published", extra={"count": len(messages)}, exc_info=True)
        finally:
            pool.release(connection)

    def close(self, timeout: float | None = None) -> bool:
        """Publish what is queued (at most `timeout` seconds) and stop the thread."""
        return self.sender.close(timeout)

    @staticmethod
    def _order_messages(session: Session, events: list) -> list[tuple[str, str]]:
        unknown = {order_id for user_id, order_id, _body in events if user_id is None}
        owners = {}
        if unknown:  # orders not in the session (rare): ask the database, outside the finished transaction
            with session.bind.connect() as conn:
                owners = dict(conn.execute(select(Order.id, Order.user_id).where(Order.id.in_(unknown))).all())
        return [(ORDERS_CHANNEL, json.dumps({"userId": str(user_id or owners.get(order_id)), "event": body},
                                            default=str))
                for user_id, order_id, body in events]


def _job_body(job: ImportJob) -> dict | None:
    """The job's progress from what is loaded (reading an expired attribute would query mid-flush)."""
    values = inspect(job).dict
    if "id" not in values:
        return None
    return {"type": "import.progress", "jobId": str(values["id"]), "filename": values.get("filename"),
            **{_camel(name): values[name] for name in JOB_FIELDS if name in values}}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
