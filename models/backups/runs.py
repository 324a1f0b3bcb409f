"""Recording backup runs, alerting on failure, and the figures /metrics reads back at scrape time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from models.backups.tables import FAILED, JOBS, OK, BackupRun
from models.emails.actions import queue_email


def utcnow() -> datetime:
    """Naive UTC, as the database stores timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment and moment.tzinfo else moment


@dataclass
class Outcome:
    """What one run saw; `record` stores it."""

    job: str
    started_at: datetime = field(default_factory=utcnow)
    status: str = OK
    backup_label: str | None = None
    backup_stopped_at: datetime | None = None
    archived_at: datetime | None = None
    error: str | None = None
    detail: dict = field(default_factory=dict)


def record(session: Session, outcome: Outcome, alert_email: str = "") -> BackupRun:
    """Store the run; the first failure of a streak mails `alert_email` in the same transaction."""
    run = BackupRun(job=outcome.job, status=outcome.status, started_at=outcome.started_at,
                    backup_label=outcome.backup_label, backup_stopped_at=naive(outcome.backup_stopped_at),
                    archived_at=naive(outcome.archived_at), error=(outcome.error or "")[:8000] or None,
                    detail=outcome.detail)
    if outcome.status == FAILED and alert_email and consecutive_failures(session, outcome.job) == 0:
        queue_email(session, alert_email, "backup_alert", job=outcome.job, error=(outcome.error or "")[:2000],
                    started_at=outcome.started_at.isoformat(timespec="seconds") + "Z")
    session.add(run)
    session.flush()
    return run


def consecutive_failures(session: Session, job: str) -> int:
    """Failed runs of `job` since its last success."""
    last_ok = select(func.coalesce(func.max(BackupRun.id), 0)).where(BackupRun.job == job, BackupRun.status == OK)
    return session.scalar(select(func.count()).where(BackupRun.job == job, BackupRun.status == FAILED,
                                                     BackupRun.id > last_ok.scalar_subquery()))


def last_drill(session: Session) -> BackupRun | None:
    return session.scalars(select(BackupRun).where(BackupRun.job == "drill").order_by(BackupRun.id.desc())
                           .limit(1)).first()


# One query for every figure /metrics shows (seconds as floats; None when never seen).
FIGURES_SQL = text("""
SELECT
  (SELECT extract(epoch FROM now() AT TIME ZONE 'UTC' - max(backup_stopped_at)) FROM backup_runs
    WHERE status = 'ok' AND job IN ('full', 'diff')) AS last_good_age,
  (SELECT extract(epoch FROM now() AT TIME ZONE 'UTC' - archived_at) FROM backup_runs
    WHERE job = 'check' AND archived_at IS NOT NULL ORDER BY id DESC LIMIT 1) AS wal_lag,
  (SELECT extract(epoch FROM max(finished_at) AT TIME ZONE 'UTC') FROM backup_runs
    WHERE job = 'drill' AND status = 'ok') AS drill_success,
  (SELECT coalesce(jsonb_object_agg(job, failures), '{}'::jsonb) FROM (
     SELECT r.job, count(*) AS failures FROM backup_runs r
     WHERE r.status = 'failed' AND r.id > coalesce((SELECT max(id) FROM backup_runs o
                                                  WHERE o.job = r.job AND o.status = 'ok'), 0)
     GROUP BY r.job) f) AS failures
""")


@dataclass(frozen=True)
class Figures:
    last_good_age: float | None
    wal_lag: float | None
    drill_success: float | None
    failures: dict[str, int]


def figures(conn) -> Figures:
    """The backup figures, read with one query on `conn`."""
    row = conn.execute(FIGURES_SQL).one()
    return Figures(last_good_age=_float(row.last_good_age), wal_lag=_float(row.wal_lag),
                   drill_success=_float(row.drill_success),
                   failures={job: int(row.failures.get(job, 0)) for job in JOBS})


def _float(value) -> float | None:
    return None if value is None else float(value)
