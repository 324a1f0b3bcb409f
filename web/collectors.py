"""What /metrics reads at scrape time besides the request metrics: queues, imports, security events."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import event, text
from sqlalchemy.orm import Session

import celeryconfig
from integrations.rabbitmq import DeadLetterBox, queue_depths
from models.operations.queues import oldest_age

log = logging.getLogger(__name__)
SECURITY_EVENTS = Counter("shop_security_events_total", "Security events committed, by kind", ["kind"])
IMPORT_DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


class QueueCollector:
    """Per queue (dead-letter queues too): messages waiting, consumers, and the oldest message's age."""

    def __init__(self, broker_url: str, redis_client, timeout: float):
        self.broker_url = broker_url
        self.redis = redis_client
        self.timeout = timeout

    def collect(self):
        names = [name for queue in celeryconfig.QUEUES for name in (queue, f"{queue}.dead")]
        try:
            depths = queue_depths(self.broker_url, names, self.timeout)
            box = DeadLetterBox(self.broker_url, list(celeryconfig.QUEUES), celeryconfig.TASK_EXCHANGE.name,
                                self.timeout)
            ages = {depth.queue: self._age(box, depth.queue, depth.messages) for depth in depths}
        except Exception:  # the broker or Redis is down: say nothing rather than fail the scrape
            log.warning("queue metrics unavailable", exc_info=True)
            return
        messages = GaugeMetricFamily("shop_queue_messages", "Messages waiting in the queue", labels=["queue"])
        consumers = GaugeMetricFamily("shop_queue_consumers", "Consumers of the queue", labels=["queue"])
        age = GaugeMetricFamily("shop_queue_oldest_message_age_seconds",
                                "How long the oldest waiting message has waited (0 when empty)", labels=["queue"])
        for depth in depths:
            messages.add_metric([depth.queue], depth.messages)
            consumers.add_metric([depth.queue], depth.consumers)
            age.add_metric([depth.queue], ages[depth.queue])
        yield from (messages, consumers, age)

    def _age(self, box: DeadLetterBox, queue: str, depth: int) -> float:
        now = time.time()
        if not queue.endswith(".dead"):
            return oldest_age(self.redis, queue, depth, now)
        # A dead-letter queue has no delivery limit, so its head can be read: it arrived at its last death.
        head = box.oldest(queue.removesuffix(".dead")) if depth else None
        return max(0.0, now - head.last_death.timestamp()) if head and head.last_death else 0.0


class ImportCollector:
    """Catalog import rows (rate them for rows/s), jobs by status and finished jobs' durations."""

    def __init__(self, db):
        self.db = db

    def collect(self):
        buckets = ", ".join(f"count(*) FILTER (WHERE d <= {b})" for b in IMPORT_DURATION_BUCKETS)
        try:
            with self.db.engine.connect() as conn:
                imported, failed = conn.execute(text(
                    "SELECT coalesce(sum(rows_imported), 0), coalesce(sum(rows_failed), 0) FROM import_jobs")).one()
                statuses = conn.execute(text("SELECT status, count(*) FROM import_jobs GROUP BY status")).all()
                *counts, total, seconds = conn.execute(text(
                    f"SELECT {buckets}, count(*), coalesce(sum(d), 0) FROM (SELECT extract(epoch FROM "
                    "finished_at - started_at) AS d FROM import_jobs WHERE finished_at IS NOT NULL "
                    "AND started_at IS NOT NULL) AS finished")).one()
        except Exception:
            log.warning("import metrics unavailable", exc_info=True)
            return
        rows = CounterMetricFamily("shop_import_rows", "Catalog rows imported or refused", labels=["outcome"])
        rows.add_metric(["imported"], imported)
        rows.add_metric(["failed"], failed)
        jobs = GaugeMetricFamily("shop_import_jobs", "Import jobs by status", labels=["status"])
        for status, count in statuses:
            jobs.add_metric([status], count)
        duration = HistogramMetricFamily("shop_import_job_duration_seconds", "Start to finish of import jobs")
        duration.add_metric([], [*((str(b), c) for b, c in zip(IMPORT_DURATION_BUCKETS, counts, strict=True)),
                                 ("+Inf", total)], float(seconds))
        yield from (rows, jobs, duration)


def count_security_events() -> None:
    """Count each committed security event by kind (idempotent)."""
    if not event.contains(Session, "after_commit", _count_committed):
        event.listen(Session, "after_commit", _count_committed)
        event.listen(Session, "after_rollback", _forget)


def _count_committed(session: Session) -> None:
    for kind in session.info.pop("security_kinds", ()):
        SECURITY_EVENTS.labels(kind).inc()


def _forget(session: Session) -> None:
    session.info.pop("security_kinds", None)
