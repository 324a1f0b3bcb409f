"""Backup figures on /metrics, read at scrape time from what the jobs recorded (whichever process ran them)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from models.backups.runs import figures


class BackupCollector:
    def __init__(self, db):
        self.db = db

    def collect(self):
        try:
            with self.db.engine.connect() as conn:
                found = figures(conn)
        except Exception:  # the database is down: say nothing rather than fail the scrape
            return
        age = GaugeMetricFamily("shop_backup_last_good_age_seconds",
                                "Seconds since the newest backup that completed and verified")
        lag = GaugeMetricFamily("shop_wal_archive_lag_seconds",
                                "Seconds since the last WAL segment was archived, as seen by the last check")
        drill = GaugeMetricFamily("shop_backup_drill_last_success_timestamp_seconds",
                                  "Unix time of the last restore drill whose data matched the source")
        failures = GaugeMetricFamily("shop_backup_job_failures_total",
                                     "Consecutive failed runs of each backup job (0 after a success)", labels=["job"])
        for family, value in ((age, found.last_good_age), (lag, found.wal_lag), (drill, found.drill_success)):
            if value is not None:  # never seen: the series is absent
                family.add_metric([], value)
        for job, count in found.failures.items():
            failures.add_metric([job], count)
        yield from (age, lag, failures, drill)
