"""The one task base retries transient database errors with backoff and gives up on the rest, in a real worker."""

from __future__ import annotations

import sys
import uuid

import pytest
import redis as redis_lib

import celeryconfig
from tests.faults.flaky_app import FLAKY
from tests.helpers import Process, dead_letters, wait_for


@pytest.fixture(scope="module")
def flaky_worker(tmp_path_factory):
    command = [sys.executable, "-m", "celery", "-A", "tests.faults.flaky_app", "worker", "-Q",
               ",".join(celeryconfig.QUEUES), "-c", "1", "--without-mingle", "--without-gossip",
               "-n", f"flaky-{uuid.uuid4().hex[:6]}@%h"]
    process = Process(command, tmp_path_factory.mktemp("flaky") / "worker.log", ready="ready.").start()
    yield process
    process.stop()


def _send(celery_app, kind: str, failures: int) -> tuple[str, str]:
    key = f"flaky:{uuid.uuid4().hex}"
    task_id = celery_app.send_task(FLAKY, kwargs={"key": key, "failures": failures, "kind": kind}).id
    return key, task_id


@pytest.mark.parametrize("kind", ["serialization", "deadlock"])
def test_a_transient_database_error_is_retried_until_the_work_succeeds(flaky_worker, celery_app, settings, kind):
    r = redis_lib.Redis.from_url(settings.REDIS_URL)
    key, task_id = _send(celery_app, kind, failures=2)
    assert wait_for(lambda: r.get(f"{key}:done"), timeout=30, message="the third run to succeed") == b"3"
    log = flaky_worker.log()
    assert log.count(f"flaky[{task_id}] retry") == 2
    assert "task hit a transient error; retrying" in log


@pytest.mark.parametrize(("kind", "runs"), [
    ("unique", 1),  # a permanent error: dead-lettered at once
    ("serialization", 4),  # transient, but still failing after the first run and max_retries=3 retries
])
def test_a_task_that_fails_for_good_is_dead_lettered_after_its_runs(flaky_worker, celery_app, settings, kind, runs):
    r = redis_lib.Redis.from_url(settings.REDIS_URL)
    key, task_id = _send(celery_app, kind, failures=10)
    [headers] = wait_for(lambda: dead_letters(settings.CELERY_BROKER_URL, "maintenance.dead"), timeout=40,
                         message="a dead letter")
    assert headers["id"] == task_id
    assert r.get(f"{key}:runs") == str(runs).encode() and r.get(f"{key}:done") is None
    assert flaky_worker.log().count(f"flaky[{task_id}] retry") == runs - 1
