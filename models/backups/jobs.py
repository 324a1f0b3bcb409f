"""The backup jobs beat and the CLI run: full/diff backups, check, restore drill, point-in-time restore."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from integrations.backups import (BackupError, ClusterConfig, PgBackRest, RepoConfig, RepoInfo, ScratchCluster)
from models.backups import checksums
from models.backups.runs import Outcome, record
from models.backups.tables import FAILED
from models.db import Database

LOCK_KEY = 0x5B4C0B  # one advisory lock for every job that writes to the repository
Progress = Callable[[str], None] | None


class JobBusy(RuntimeError):
    """Another backup job holds the lock; this one did nothing."""


class Refused(ValueError):
    """A restore that would be wrong to run (bad target, time outside the window)."""


def source_url(settings) -> str:
    return settings.BACKUP_DATABASE_URL or settings.DATABASE_URL


def make_tool(settings, data_dir: str | None = None) -> PgBackRest:
    """pgBackRest for the configured cluster and repository (asks the cluster its data folder if unset)."""
    url = make_url(source_url(settings))
    repo = RepoConfig(
        stanza=settings.BACKUP_STANZA, kind=settings.BACKUP_REPO_TYPE, cipher_pass=settings.BACKUP_CIPHER_PASS,
        path=str(settings.path(settings.BACKUP_REPO_PATH)) if settings.BACKUP_REPO_TYPE == "posix"
        else settings.BACKUP_REPO_PATH,
        retention_full=settings.BACKUP_RETENTION_FULL, retention_diff=settings.BACKUP_RETENTION_DIFF,
        retention_archive=settings.BACKUP_RETENTION_ARCHIVE, process_max=settings.BACKUP_PROCESS_MAX,
        io_timeout=settings.BACKUP_IO_TIMEOUT,
        s3_bucket=settings.BACKUP_S3_BUCKET or settings.S3_BUCKET,
        s3_endpoint=settings.S3_ENDPOINT_URL.split("://", 1)[-1].rstrip("/") or
        f"s3.{settings.S3_REGION}.amazonaws.com",
        s3_region=settings.S3_REGION, s3_key=settings.S3_ACCESS_KEY_ID, s3_secret=settings.S3_SECRET_ACCESS_KEY,
        s3_ca_file=str(settings.path(settings.BACKUP_S3_CA_FILE)) if settings.BACKUP_S3_CA_FILE else "",
        s3_verify_tls=settings.BACKUP_S3_VERIFY_TLS)
    cluster = ClusterConfig(
        data_dir=data_dir or settings.BACKUP_PG_DATA or _ask_data_dir(settings), port=url.port or 5432,
        socket_dir=settings.BACKUP_PG_SOCKET_DIR, user=url.username or "postgres", database=url.database,
        bin_dir=settings.BACKUP_PG_BINDIR, run_as=settings.BACKUP_RUN_AS,
        work_dir=settings.path(settings.BACKUP_WORK_DIR))
    tool = PgBackRest(repo, cluster)
    tool.write_config()
    return tool


def _ask_data_dir(settings) -> str:
    engine = create_engine(source_url(settings), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            return conn.execute(text("SHOW data_directory")).scalar()
    finally:
        engine.dispose()


@contextmanager
def job_lock(db: Database) -> Iterator[None]:
    """Hold the one backup lock (a session advisory lock: it dies with the process), or raise JobBusy."""
    with db.engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
            conn.rollback()
            raise JobBusy("another backup job is running")
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            conn.commit()


@contextmanager
def recorded(db: Database, job: str, alert_email: str) -> Iterator[Outcome]:
    """Run the body, then record its outcome; a failure is recorded (and alerted) and re-raised."""
    outcome = Outcome(job=job)
    try:
        yield outcome
    except Exception as exc:  # whatever stopped it (the source down, pg_ctl, pgBackRest): count it, say it
        outcome.status, outcome.error = FAILED, str(exc)
        with db.session() as session:
            record(session, outcome, alert_email)
        raise
    with db.session() as session:
        record(session, outcome, alert_email)


def run_backup(db: Database, settings, kind: str, progress: Progress = None) -> Outcome:
    """Take a full or diff backup and verify the repository; one at a time (JobBusy otherwise)."""
    with job_lock(db), recorded(db, kind, settings.BACKUP_ALERT_EMAIL) as outcome:
        tool = make_tool(settings)
        tool.stanza_create()
        backup = tool.backup(kind, progress)
        outcome.detail["verify"] = tool.verify().strip().splitlines()[-2:]
        outcome.backup_label, outcome.backup_stopped_at = backup.label, backup.stopped_at
        outcome.detail.update(size=backup.size, repo_size=backup.repo_size, seconds=(
            backup.stopped_at - backup.started_at).total_seconds())
    return outcome


def check(db: Database, settings) -> Outcome:
    """pgBackRest's check (WAL reaches the archive), then record the last archived WAL and the newest backup."""
    with recorded(db, "check", settings.BACKUP_ALERT_EMAIL) as outcome:
        tool = make_tool(settings)
        try:
            tool.check()
        finally:
            outcome.archived_at, outcome.detail["failed_count"] = _archiver(settings)
        newest = tool.info().newest
        if newest:
            outcome.backup_label = newest.label
            outcome.detail["newest_backup_stopped_at"] = newest.stopped_at.isoformat()
    return outcome


def _archiver(settings) -> tuple[datetime | None, int | None]:
    """When the source last archived a WAL segment, and how many pushes failed, from pg_stat_archiver."""
    engine = create_engine(source_url(settings), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT last_archived_time, failed_count FROM pg_stat_archiver")).one()
            return row.last_archived_time, row.failed_count
    except Exception:  # the source is down: the check's own error says why
        return None, None
    finally:
        engine.dispose()


# --- restores ---------------------------------------------------------------

def recoverable_window(info: RepoInfo) -> tuple[datetime, datetime]:
    """The times a restore can reach: from just after the oldest backup ended until now."""
    if info.oldest is None:
        raise Refused("the repository holds no backup yet: nothing can be restored")
    return info.oldest.stopped_at + timedelta(seconds=1), datetime.now(UTC)


def parse_target_time(value: str) -> datetime:
    """An ISO timestamp that names its UTC offset (a time without one is ambiguous, hence refused)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Refused(f"--to: {value!r} is not a timestamp like 2026-11-30 14:05:00+00:00") from None
    if moment.tzinfo is None:
        raise Refused(f"--to: {value!r} has no UTC offset; add one, e.g. {value}+00:00")
    return moment


def check_target_dir(target: Path, force: bool) -> None:
    """Refuse a folder that holds data unless forced, and always one a running server uses."""
    if (target / "postmaster.pid").exists():
        raise Refused(f"--target: {target} belongs to a running PostgreSQL server (postmaster.pid); stop it first")
    if target.exists() and any(target.iterdir()) and not force:
        raise Refused(f"--target: {target} is not empty; choose an empty folder or pass --force to overwrite it")


def restore(settings, target: Path, to: str | None, port: int | None = None, force: bool = False,
            progress: Progress = None) -> ScratchCluster:
    """Restore into `target` up to `to` (newest backup when None); started on `port` when given."""
    tool = make_tool(settings)
    check_target_dir(target, force)
    moment = None
    if to is not None:
        moment = parse_target_time(to)
        start, end = recoverable_window(tool.info())
        if not start <= moment <= end:
            raise Refused(f"--to: {moment.isoformat()} is outside the recoverable window "
                          f"{start.isoformat()} .. {end.isoformat(timespec='seconds')}")
    cluster = ScratchCluster(target, port or 5432, settings.BACKUP_PG_BINDIR, settings.BACKUP_RUN_AS,
                             socket_dir=str(target))
    cluster.prepare()
    tool.restore(target, to_time=moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00") if moment else None,
                 force=force, progress=progress)
    if port:
        cluster.configure()
        cluster.start()
        cluster.wait_promoted()
    return cluster


def drill(db: Database, settings, progress: Progress = None) -> Outcome:
    """Restore the newest backup plus WAL up to a fresh restore point into a scratch cluster and compare it."""
    with job_lock(db), recorded(db, "drill", settings.BACKUP_ALERT_EMAIL) as outcome:
        tool = make_tool(settings)
        newest = tool.info().newest
        if newest is None:
            raise BackupError("the repository holds no backup to drill")
        name = f"drill-{uuid.uuid4().hex[:12]}"
        engine = create_engine(source_url(settings))
        try:
            source = checksums.checksums_at_restore_point(engine, name)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SELECT pg_switch_wal()"))
        finally:
            engine.dispose()
        tool.check()  # waits until the segment holding the restore point is in the archive
        scratch = ScratchCluster(settings.path(settings.BACKUP_DRILL_DIR), settings.BACKUP_DRILL_PORT,
                                 settings.BACKUP_PG_BINDIR, settings.BACKUP_RUN_AS)
        scratch.remove()
        scratch.prepare()
        try:
            tool.restore(scratch.data_dir, to_name=name, progress=progress)
            scratch.configure()
            scratch.start()
            scratch.wait_promoted()
            restored_engine = create_engine(scratch.url(make_url(source_url(settings)).database))
            try:
                with restored_engine.connect() as conn:
                    restored = checksums.table_checksums(conn)
            finally:
                restored_engine.dispose()
        finally:
            scratch.remove()
        outcome.backup_label = newest.label
        outcome.detail.update(restore_point=name, tables=len(source), rows=sum(c for c, _ in source.values()))
        if diff := checksums.differences(source, restored):
            outcome.detail["differences"] = diff
            raise BackupError("restored data differs from the source:\n" + "\n".join(diff))
    return outcome
