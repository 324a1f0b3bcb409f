"""Task metrics from the workers themselves, served by each worker on WORKER_METRICS_PORT.

prometheus_client in multiprocess mode: every pool process writes its
samples to files in a folder of its own worker, and the worker's main
process sums them on each scrape. We chose this over a Celery exporter
because the exporters read task events, which are off (they cost three
broker messages per task); here a task costs a few in-memory file writes.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from celery import signals

from models.operations.queues import SENT_AT_HEADER, note_started
from tasks import runtime

log = logging.getLogger(__name__)
RUNTIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
METRICS: SimpleNamespace | None = None
REDIS_RETRY_AFTER = 30.0
_redis_down_until = 0.0
# A queue's "most recently started message was published at" note is written at most this often per process
# (seconds): a skipped note leaves an older publish time in Redis, so the queue's age stays an upper bound,
# high by at most what the process started in that time; one Redis round trip per task was 4 % of a worker.
NOTE_EVERY = 0.5
_noted: dict[str, float] = {}


def _use_multiprocess_dir(path: Path) -> None:
    """Point prometheus_client at `path` (it reads the variable when its first metric is made)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    if "prometheus_client.values" in sys.modules:  # imported early by something: switch it over
        from prometheus_client import values
        values.ValueClass = values.MultiProcessValue()


def _make_metrics() -> SimpleNamespace:
    from prometheus_client import Counter, Histogram

    return SimpleNamespace(
        started=Counter("shop_task_started_total", "Tasks started by a worker", ["task"]),
        succeeded=Counter("shop_task_succeeded_total", "Tasks that returned", ["task"]),
        failed=Counter("shop_task_failed_total", "Tasks that failed for good (dead-lettered)", ["task"]),
        retried=Counter("shop_task_retried_total", "Task runs that ended in a retry", ["task"]),
        runtime=Histogram("shop_task_runtime_seconds", "Time a task ran, whatever its outcome", ["task"],
                          buckets=RUNTIME_BUCKETS),
    )


def _serve(port: int, address: str, path: Path) -> None:
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))
    start_http_server(port, addr=address, registry=registry)


def connect(shop) -> None:
    """Connect the worker's metric handlers for the process whose resources are `shop`."""
    signals.celeryd_init.connect(lambda **_: _setup(shop.settings), weak=False)
    for signal, handler in ((signals.worker_shutdown, _remove_samples), (signals.task_prerun, _started_task),
                            (signals.task_postrun, _ended_task), (signals.task_success, _succeeded),
                            (signals.task_failure, _failed), (signals.task_retry, _retried)):
        signal.connect(handler, weak=False)


def _setup(settings) -> None:
    """In the worker's main process, before the pool forks: the samples folder, the metrics, the server."""
    global METRICS
    if not settings.WORKER_METRICS_PORT:
        return
    path = settings.path(settings.WORKER_METRICS_DIR) / str(os.getpid())
    _use_multiprocess_dir(path)
    METRICS = _make_metrics()
    try:
        _serve(settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDRESS, path)
    except OSError as exc:  # the port is taken: run without the endpoint rather than not at all
        log.error("worker metrics endpoint not started", extra={"port": settings.WORKER_METRICS_PORT,
                                                                 "error": str(exc)})
        return
    log.info("worker metrics served", extra={"port": settings.WORKER_METRICS_PORT})


def _remove_samples(**_):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if METRICS is not None and path:
        shutil.rmtree(path, ignore_errors=True)


def _started_task(task_id=None, task=None, **_):
    sent_at = getattr(task.request, SENT_AT_HEADER, None) or (task.request.headers or {}).get(SENT_AT_HEADER)
    queue = (task.request.delivery_info or {}).get("routing_key")
    global _redis_down_until
    now = time.monotonic()
    if sent_at and queue and now >= _redis_down_until and now - _noted.get(queue, float("-inf")) >= NOTE_EVERY:
        try:
            note_started(runtime.redis_client(), queue, float(sent_at))
            _noted[queue] = now
        except Exception:  # Redis away: the age reads high for a while, tasks must not wait on it each time
            _redis_down_until = time.monotonic() + REDIS_RETRY_AFTER
            log.warning("could not note the start of a task", exc_info=True)
    if METRICS is not None:
        METRICS.started.labels(task.name).inc()
        # On the execution's own request, not in a dict by task id: in a pool of threads two deliveries of
        # one id (a retry due at once, a row the sweep published again) can run at the same time.
        task.request.metrics_started = time.perf_counter()


def _ended_task(task_id=None, task=None, **_):
    began = getattr(task.request, "metrics_started", None)
    if METRICS is not None and began is not None:
        METRICS.runtime.labels(task.name).observe(time.perf_counter() - began)


def _succeeded(sender=None, **_):
    if METRICS is not None:
        METRICS.succeeded.labels(sender.name).inc()


def _failed(sender=None, **_):
    if METRICS is not None:
        METRICS.failed.labels(sender.name).inc()


def _retried(sender=None, **_):
    if METRICS is not None:
        METRICS.retried.labels(sender.name).inc()
