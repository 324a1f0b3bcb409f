"""A periodic run that expired while no worker was there is discarded, not dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kombu import Connection

from tests.conftest import start_worker
from tests.helpers import dead_letters, wait_for


def _depth(broker_url: str, queue: str) -> int:
    with Connection(broker_url) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def test_an_expired_run_is_discarded_by_the_worker_and_never_dead_lettered(settings, celery_app, tmp_path):
    app = celery_app

    # Published while no worker runs, already past its expiry (a run that waited out an outage).
    result = app.send_task("tasks.maintenance.sweep_outbox", expires=datetime.now(UTC) - timedelta(seconds=5))
    with Connection(settings.CELERY_BROKER_URL) as conn:
        message = conn.default_channel.basic_get("maintenance", no_ack=False)
        assert message is not None and "expiration" not in message.properties
        assert message.headers["expires"] and message.headers["id"] == result.id
        message.channel.basic_reject(message.delivery_tag, requeue=True)
    assert _depth(settings.CELERY_BROKER_URL, "maintenance") == 1  # still queued, not dead-lettered by a TTL
    worker = start_worker(tmp_path)
    try:
        wait_for(lambda: f"Discarding revoked task: tasks.maintenance.sweep_outbox[{result.id}]" in worker.log(),
                 timeout=30, message="the worker to discard the expired run")
        wait_for(lambda: _depth(settings.CELERY_BROKER_URL, "maintenance") == 0)
    finally:
        worker.stop()
    assert dead_letters(settings.CELERY_BROKER_URL, "maintenance.dead") == []
    assert f"Task tasks.maintenance.sweep_outbox[{result.id}] succeeded" not in worker.log()
