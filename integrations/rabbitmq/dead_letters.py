"""Dead-letter queues read, replayed and emptied over AMQP.

A message is read with `basic_get` and not acknowledged: closing the channel
returns every message read to its queue, so listing changes nothing (a
dead-letter queue has no delivery limit). A replay publishes the same body
and task id to the task exchange, waits for the broker's confirm, and only
then acknowledges the dead letter: a failure in between leaves it where it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kombu import Connection, Producer

# Headers RabbitMQ adds when it dead-letters or redelivers: a replayed message starts clean.
BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                  "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")
# Ours, carried over a replay so a message that dies again keeps its history.
DEATHS_HEADER = "shop-deaths"
FIRST_DEATH_HEADER = "shop-first-death"


@dataclass
class DeadLetter:
    """One dead letter: a Celery task message and how it died."""

    id: str
    queue: str  # the task queue it died in
    task: str
    args: list
    kwargs: dict
    reason: str  # rejected (failed for good), delivery_limit (kept killing workers), expired
    death_count: int
    first_death: datetime | None
    last_death: datetime | None
    headers: dict = field(repr=False, default_factory=dict)
    body: bytes = field(repr=False, default=b"")
    properties: dict = field(repr=False, default_factory=dict)


def _time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def parse(message, dead_queue: str) -> DeadLetter:
    """A dead letter from an AMQP message of Celery's protocol 2 (headers + `[args, kwargs, embed]`)."""
    headers = dict(message.headers or {})
    body = message.body  # py-amqp hands over text when the content encoding names one
    body = body.encode(message.properties.get("content_encoding") or "utf-8") if isinstance(body, str) else body
    deaths = headers.get("x-death") or []
    times = [t for t in (_time(d.get("time")) for d in deaths) if t]
    first = _time(headers.get(FIRST_DEATH_HEADER))
    try:
        args, kwargs, *_ = json.loads(body)
    except (ValueError, TypeError):
        args, kwargs = [], {}
    return DeadLetter(
        id=str(headers.get("id") or message.properties.get("correlation_id") or ""),
        queue=dead_queue.removesuffix(".dead"), task=str(headers.get("task") or "?"),
        args=args if isinstance(args, list) else [], kwargs=kwargs if isinstance(kwargs, dict) else {},
        reason=str((deaths[0].get("reason") if deaths else None) or headers.get("x-first-death-reason") or "?"),
        death_count=sum(int(d.get("count", 1)) for d in deaths) + int(headers.get(DEATHS_HEADER) or 0),
        first_death=min([t for t in (first, *times) if t], default=None),
        last_death=max(times, default=first),
        headers=headers, body=bytes(body), properties=dict(message.properties))


class DeadLetterBox:
    """The `<queue>.dead` queues of one broker."""

    def __init__(self, url: str, queues: list[str], exchange: str, timeout: float = 5.0,
                 stamp_header: str | None = None):
        self.stamp_header = stamp_header  # set to the replay's time, as a new publish would set it
        self.url = url
        self.queues = list(queues)
        self.exchange = exchange
        self.timeout = timeout

    @contextmanager
    def _channel(self) -> Iterator:
        with Connection(self.url, connect_timeout=self.timeout,
                        transport_options={"confirm_publish": True}) as conn:
            channel = conn.channel()
            try:
                yield channel
            finally:
                channel.close()  # returns whatever was read and not acknowledged

    def _dead_queues(self, queue: str | None) -> list[str]:
        if queue is not None and queue not in self.queues:
            raise KeyError(queue)
        return [f"{name}.dead" for name in ([queue] if queue else self.queues)]

    def _read(self, channel, dead_queue: str) -> Iterator:
        """Every message of `dead_queue` once, unacknowledged (stops at the depth seen first)."""
        _, depth, _ = channel.queue_declare(dead_queue, passive=True)
        for _ in range(depth):
            message = channel.basic_get(dead_queue, no_ack=False)
            if message is None:
                return
            yield message

    def list(self, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` dead letters (of `queue`, else of every queue), left in place."""
        found = []
        for dead_queue in self._dead_queues(queue):
            with self._channel() as channel:
                for message in self._read(channel, dead_queue):
                    found.append(parse(message, dead_queue))
                    if len(found) >= limit:
                        return found
        return found

    def oldest(self, queue: str) -> DeadLetter | None:
        """The first dead letter of `queue` (the one waiting longest), left in place."""
        with self._channel() as channel:
            message = channel.basic_get(f"{queue}.dead", no_ack=False)
            return parse(message, f"{queue}.dead") if message is not None else None

    def find(self, task_id: str) -> DeadLetter | None:
        """The dead letter of task `task_id`, left in place; None when there is none."""
        return self._take(task_id, lambda channel, message, letter: None)

    def drop(self, task_id: str) -> DeadLetter | None:
        """Delete the dead letter of task `task_id`; None when there is none."""
        return self._take(task_id, lambda channel, message, letter: channel.basic_ack(message.delivery_tag))

    def replay(self, task_id: str) -> DeadLetter | None:
        """Send the dead letter of `task_id` back to its queue with the same task id; None when there is none."""
        return self._take(task_id, self._republish)

    def replay_next(self, queue: str | None = None) -> DeadLetter | None:
        """Replay the first dead letter found (of `queue`, else of any queue); None when all are empty."""
        for dead_queue in self._dead_queues(queue):
            with self._channel() as channel:
                message = channel.basic_get(dead_queue, no_ack=False)
                if message is not None:
                    letter = parse(message, dead_queue)
                    self._republish(channel, message, letter)
                    return letter
        return None

    def _take(self, task_id: str, act) -> DeadLetter | None:
        for dead_queue in self._dead_queues(None):
            with self._channel() as channel:
                for message in self._read(channel, dead_queue):
                    letter = parse(message, dead_queue)
                    if letter.id == task_id:
                        act(channel, message, letter)
                        return letter
        return None

    def _republish(self, channel, message, letter: DeadLetter) -> None:
        headers = {k: v for k, v in letter.headers.items() if k not in BROKER_HEADERS}
        headers.update({"retries": 0, DEATHS_HEADER: letter.death_count})
        if self.stamp_header:
            headers[self.stamp_header] = time.time()
        if letter.first_death:
            headers[FIRST_DEATH_HEADER] = int(letter.first_death.timestamp())
        properties = {k: v for k, v in letter.properties.items()
                      if k in ("content_type", "content_encoding", "correlation_id", "reply_to", "priority")}

        Producer(channel).publish(letter.body, exchange=self.exchange, routing_key=letter.queue,
                                  headers=headers, delivery_mode=2, retry=False, **properties)
        channel.basic_ack(message.delivery_tag)
