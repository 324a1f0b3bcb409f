"""One beat: Celery's own scheduler, sending only while it holds a lock in Redis.

A second beat started by mistake keeps its schedule in step (its entries
advance as due) but sends nothing; it takes over when the holder stops, or
BEAT_LOCK_TIMEOUT seconds after the holder died without letting go.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import redis
from celery.beat import PersistentScheduler


log = logging.getLogger("celery.beat")
LOCK_KEY = "beat:lock"
# Extend the lock if it is ours, take it if nobody holds it; 1 when we hold it afterwards.
HOLD = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class SingleBeatScheduler(PersistentScheduler):
    """PersistentScheduler whose due entries are sent only by the beat holding `beat:lock`."""

    def __init__(self, app, *args, **kwargs):
        shop = app.shop  # the resources bootstrap built for this beat's app
        self.lock_timeout = shop.settings.BEAT_LOCK_TIMEOUT
        self.redis = shop.redis
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holding = False
        super().__init__(app, *args, **kwargs)

    def tick(self, *args, **kwargs):
        self._hold()
        # Come back well before the lock would expire, whatever the schedule says.
        return min(super().tick(*args, **kwargs), self.lock_timeout / 3)

    def apply_entry(self, entry, producer=None):
        if self.holding:
            super().apply_entry(entry, producer=producer)

    def _hold(self) -> None:
        try:
            held = bool(self.redis.eval(HOLD, 1, LOCK_KEY, self.token, int(self.lock_timeout * 1000)))
        except redis.RedisError as exc:  # cannot tell whether another beat holds it: send nothing
            log.warning("beat: lock unreachable, not sending", extra={"error": str(exc)})
            held = False
        if held != self.holding:
            log.info("beat: Acquired lock" if held else "beat: Lost lock; another beat sends",
                     extra={"lock": LOCK_KEY, "holder": self.token})
        elif not held and not getattr(self, "_told_waiting", False):
            log.info("beat: Waiting for the lock; another beat sends", extra={"lock": LOCK_KEY})
            self._told_waiting = True
        self.holding = held

    def close(self):
        if self.holding:
            try:
                self.redis.eval(RELEASE, 1, LOCK_KEY, self.token)
                log.info("beat: Released lock")
            except redis.RedisError:
                pass  # it expires by itself
        self.holding = False
        super().close()
