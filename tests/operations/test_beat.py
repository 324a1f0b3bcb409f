"""One beat: a second beat started by mistake sends nothing while the first holds the lock, and takes over
once the first is gone, even killed without releasing it."""

from __future__ import annotations

import os
import signal

from kombu import Connection

from tests.conftest import start_beat
from tests.helpers import wait_for

SENT = "Sending due task outbox-sweep"


def maintenance_depth(settings, queue: str = "maintenance") -> int:
    """Sweeps waiting, expired ones included (the worker skips those; the broker keeps them)."""
    with Connection(settings.CELERY_BROKER_URL) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def test_two_beats_send_each_job_once_and_the_second_takes_over(tmp_path, settings):
    env = {"OUTBOX_SWEEP_INTERVAL": "1", "BEAT_LOCK_TIMEOUT": "6"}
    first = start_beat(tmp_path / "first", **env)
    second = None
    try:
        wait_for(lambda: "Acquired lock" in first.log(), timeout=30, message="the first beat to take the lock")
        second = start_beat(tmp_path / "second", **env)
        sent_before = first.log().count(SENT)
        wait_for(lambda: first.log().count(SENT) >= sent_before + 5, timeout=30,
                 message="five sweeps sent while both beats run")
        assert "Acquired lock" not in second.log() and SENT not in second.log()
        # Every sweep on the queue was sent by the first beat (no worker consumes them here).
        wait_for(lambda: maintenance_depth(settings) == first.log().count(SENT),
                 message="the queue to hold exactly the first beat's sweeps")
        assert maintenance_depth(settings, "maintenance.dead") == 0  # expired sweeps are no dead letters

        os.killpg(first.proc.pid, signal.SIGKILL)  # gone without releasing the lock
        first.proc.wait()
        wait_for(lambda: SENT in second.log(), timeout=40, message="the second beat to take over")
        assert "Acquired lock" in second.log()
    finally:
        first.stop()
        if second:
            second.stop()

