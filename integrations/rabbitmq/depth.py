"""How many messages wait in each queue, read with passive declares."""

from __future__ import annotations

from dataclasses import dataclass

from amqp.exceptions import NotFound
from kombu import Connection


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    messages: int  # ready, not yet delivered to a consumer
    consumers: int


def queue_depths(url: str, queues: list[str], timeout: float = 2.0) -> list[QueueDepth]:
    """Depth and consumer count of each queue that exists (a missing queue is left out)."""
    found = []
    with Connection(url, connect_timeout=timeout) as conn:
        channel = conn.channel()
        for name in queues:
            try:
                _, messages, consumers = channel.queue_declare(name, passive=True)
            except NotFound:  # a passive declare of a missing queue closes the channel
                channel = conn.channel()
                continue
            found.append(QueueDepth(name, messages, consumers))
    return found
