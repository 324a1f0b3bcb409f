"""How long the oldest message of a queue has waited, without touching the message.

Reading a task queue's head message would count as a delivery attempt
toward its quorum `x-delivery-limit`, so the age is bounded from two sides
instead, both upper bounds of the true age: when the queue was last seen
empty (by whoever measures), and when the message most recently started
by a worker was published (every waiting message was published after it).
"""

from __future__ import annotations

HEAD_KEY = "queue:{}:started_sent_at"
NONEMPTY_KEY = "queue:{}:nonempty_since"
SENT_AT_HEADER = "sent_at"


def note_started(redis_client, queue: str, sent_at: float) -> None:
    """A worker started a message of `queue` that was published at `sent_at`."""
    redis_client.set(HEAD_KEY.format(queue), sent_at)


def oldest_age(redis_client, queue: str, depth: int, now: float) -> float:
    """Seconds the oldest waiting message of `queue` has waited at most (0 when it is empty)."""
    if depth == 0:
        redis_client.delete(NONEMPTY_KEY.format(queue))
        return 0.0
    redis_client.set(NONEMPTY_KEY.format(queue), now, nx=True)
    since, started = redis_client.mget(NONEMPTY_KEY.format(queue), HEAD_KEY.format(queue))
    return max(0.0, now - max(float(since or now), float(started or 0)))
