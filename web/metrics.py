"""GET /metrics: Prometheus text format, correct across gunicorn's worker processes.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it), every process
writes its samples there and a scrape sums them; without it (tests, the
Flask dev server) the process's own registry is served.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import text

from integrations.breaker import BreakerCollector
from web import collectors
from web.backups.metrics import BackupCollector

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to answer an HTTP request", ["method", "endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


class OutboxCollector:
    """Outbox backlog, read at scrape time: what the broker has not received yet."""

    def __init__(self, db):
        self.db = db

    def collect(self):
        pending = GaugeMetricFamily("outbox_unpublished", "Outbox rows not yet published to the broker")
        age = GaugeMetricFamily("outbox_oldest_unpublished_seconds", "Age of the oldest unpublished outbox row")
        try:
            with self.db.engine.connect() as conn:
                count, oldest = conn.execute(text(
                    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                    "FROM outbox WHERE published_at IS NULL")).one()
        except Exception:  # the database is down: say nothing rather than fail the scrape
            return
        pending.add_metric([], count)
        age.add_metric([], float(oldest))
        yield pending
        yield age


class RetentionCollector:
    """What the retention purges removed and when each last ran, read at scrape time (they run in workers)."""

    def __init__(self, db):
        self.db = db

    def collect(self):
        purged = CounterMetricFamily("shop_retention_purged", "Rows removed by the retention purges", labels=["kind"])
        last = GaugeMetricFamily("shop_retention_last_run_timestamp_seconds",
                                 "When each retention purge last finished a run", labels=["kind"])
        try:
            with self.db.engine.connect() as conn:
                rows = conn.execute(text("SELECT kind, purged_total, extract(epoch FROM last_run_at) "
                                         "FROM retention_counters ORDER BY kind")).all()
        except Exception:  # the database is down: say nothing rather than fail the scrape
            return
        for kind, total, at in rows:
            purged.add_metric([kind], total)
            if at is not None:
                last.add_metric([kind], float(at))
        yield purged
        yield last


def register(app: Flask, db, redis_client=None) -> None:
    @app.after_request
    def record(response):
        started = g.get("started")  # set by web.middleware for every request
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        if started is not None and endpoint != "/metrics":
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
            REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        return response

    outbox = OutboxCollector(db)
    retention = RetentionCollector(db)
    collectors.count_security_events()
    settings = app.extensions["shop"].settings
    queues = collectors.QueueCollector(settings.CELERY_BROKER_URL, redis_client, settings.SERVICE_TIMEOUT)
    imports = collectors.ImportCollector(db)
    backups = BackupCollector(db)

    @app.get("/metrics")
    def metrics():
        registry = CollectorRegistry()
        registry.register(outbox)
        registry.register(retention)
        registry.register(imports)
        registry.register(backups)
        if redis_client is not None:
            registry.register(BreakerCollector(redis_client))
            registry.register(queues)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.MultiProcessCollector(registry)
            body = generate_latest(registry)
        else:
            body = generate_latest(REGISTRY) + generate_latest(registry)
        return Response(body, content_type=CONTENT_TYPE_LATEST)
