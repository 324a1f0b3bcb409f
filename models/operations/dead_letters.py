"""Dead letters for people: listed with personal data masked, replayed or dropped with a security event.

The broker keeps the message; the worker that gave up on it noted the error
in Redis under the task id (`note_failure`), since a dead-lettered message
carries no exception.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime

from integrations.rabbitmq import DeadLetter, DeadLetterBox
from logconfig import mask_secrets
from models.errors import NotFound
from models.security.events import record_event
from models.users.permissions import Actor, authorize

FAILURE_KEY = "deadletter:failure:{}"
FAILURE_TTL = 90 * 86400  # longer than anyone leaves a dead letter unread
PERSONAL = re.compile(r"email|name|phone|address|street|city|postal|password|token|secret|code|card|iban",
                      re.IGNORECASE)
MAX_VALUE = 80


def note_failure(redis_client, task_id: str, task: str, error: str, traceback: str | None) -> None:
    """Remember why task `task_id` failed for good, for whoever reads its dead letter."""
    lines = [line for line in (traceback or "").strip().splitlines() if line.strip()]
    redis_client.set(FAILURE_KEY.format(task_id), json.dumps({
        "task": task, "error": mask_secrets(error)[:500],
        "traceback": mask_secrets(lines[-1].strip())[:500] if lines else None,
        "failedAt": time.time()}), ex=FAILURE_TTL)


def _summary(value, key: str = ""):
    """An argument as safe to show: personal fields hidden, emails masked, long values cut."""
    if key and PERSONAL.search(key):
        return "***"
    if isinstance(value, dict):
        return {k: _summary(v, str(k)) for k, v in list(value.items())[:20]}
    if isinstance(value, list | tuple):
        return [_summary(v) for v in list(value)[:20]]
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = mask_secrets(str(value))
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


@dataclass
class DeadLetterView:
    """What an operator sees of a dead letter."""

    id: str
    queue: str
    task: str
    args: list
    kwargs: dict
    reason: str
    death_count: int
    first_death_at: datetime | None
    last_death_at: datetime | None
    error: str | None
    traceback_last_line: str | None


def view(letter: DeadLetter, redis_client) -> DeadLetterView:
    raw = redis_client.get(FAILURE_KEY.format(letter.id)) if letter.id else None
    failure = json.loads(raw) if raw else {}
    error = failure.get("error")
    if error is None and letter.reason == "delivery_limit":
        error = "delivered too many times: each delivery ended with its worker lost"
    return DeadLetterView(id=letter.id, queue=letter.queue, task=letter.task, args=_summary(letter.args),
                          kwargs=_summary(letter.kwargs), reason=letter.reason, death_count=letter.death_count,
                          first_death_at=letter.first_death, last_death_at=letter.last_death, error=error,
                          traceback_last_line=failure.get("traceback"))


class DeadLetters:
    """The operations on dead letters, each authorized; changes leave a security event."""

    def __init__(self, box: DeadLetterBox, redis_client, db):
        self.box = box
        self.redis = redis_client
        self.db = db

    def list(self, actor: Actor, queue: str | None = None, limit: int = 100) -> list[DeadLetterView]:
        authorize(actor, "dead_letters:view")
        return [view(letter, self.redis) for letter in self.box.list(queue, limit)]

    def show(self, actor: Actor, task_id: str) -> DeadLetterView:
        authorize(actor, "dead_letters:view")
        return view(self._found(self.box.find(task_id), task_id), self.redis)

    def replay(self, actor: Actor, task_id: str) -> DeadLetterView:
        """Send it back to its queue under the same task id (an idempotent task still runs once)."""
        return self._change(actor, "dead_letter_replayed", lambda: self.box.replay(task_id), task_id)

    def drop(self, actor: Actor, task_id: str) -> DeadLetterView:
        """Delete it for good."""
        return self._change(actor, "dead_letter_dropped", lambda: self.box.drop(task_id), task_id)

    def replay_all(self, actor: Actor, queue: str | None = None, rate: float | None = None,
                   limit: int | None = None) -> list[DeadLetterView]:
        """Replay dead letters (of `queue`) one by one, at most `rate` per second and `limit` in all."""
        done = []
        while limit is None or len(done) < limit:
            started = time.monotonic()
            try:
                done.append(self._change(actor, "dead_letter_replayed", lambda: self.box.replay_next(queue)))
            except NotFound:
                break
            if rate:
                time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
        return done

    def _change(self, actor: Actor, kind: str, act, task_id: str | None = None) -> DeadLetterView:
        authorize(actor, "dead_letters:manage")
        with self.db.session() as session:
            letter = self._found(act(), task_id)
            # Written after the broker acted: an event exists for every replay or drop that happened.
            record_event(session, kind, actor, task_id=letter.id, task=letter.task, queue=letter.queue,
                         death_count=letter.death_count)
        result = view(letter, self.redis)
        if kind == "dead_letter_dropped":
            self.redis.delete(FAILURE_KEY.format(letter.id))
        return result

    @staticmethod
    def _found(letter: DeadLetter | None, task_id: str | None) -> DeadLetter:
        if letter is None:
            raise NotFound(f"no dead letter for task {task_id}" if task_id else "no dead letters left")
        return letter
