"""The backup jobs against the scratch cluster: drill, lock, verify, encryption, S3 over TLS, metrics."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace

import pytest

from integrations.backups import BackupError
from models.backups import jobs
from models.db import Database
from settings import Settings


@pytest.fixture
def db(settings):
    database = Database(settings.DATABASE_URL)
    yield database
    database.dispose()


def metric(client, name: str) -> str:
    lines = [line for line in client.get("/metrics").get_data(as_text=True).splitlines()
             if line.startswith(name)]
    return "\n".join(lines)


def test_drill_restores_the_newest_backup_and_matches_every_table(source, db, client):
    source.sql("INSERT INTO categories (name, path) VALUES ('Drills', :p)", p=f"drills-{uuid.uuid4().hex[:6]}")
    assert metric(client, "shop_backup_last_good_age_seconds") == ""  # never backed up: absent
    jobs.run_backup(db, source.settings, "full")

    outcome = jobs.drill(db, source.settings)

    assert outcome.status == "ok" and outcome.detail["tables"] > 10 and outcome.detail["rows"] > 0
    assert "differences" not in outcome.detail
    assert not (source.base / "drill").exists()  # the scratch cluster is gone
    assert float(metric(client, "shop_backup_drill_last_success_timestamp_seconds").split()[-1]) > 0
    assert 0 <= float(metric(client, "shop_backup_last_good_age_seconds").split()[-1]) < 120
    assert 'shop_backup_job_failures_total{job="drill"} 0.0' in metric(client, "shop_backup_job_failures_total")


def test_check_records_the_wal_archive_lag(source, db, client):
    jobs.check(db, source.settings)
    assert 0 <= float(metric(client, "shop_wal_archive_lag_seconds").split()[-1]) < 60


def test_an_overlapping_backup_job_does_nothing(source, db):
    before = len(jobs.make_tool(source.settings).info().backups)
    with jobs.job_lock(db):
        busy = source.flask("run", "--type", "diff")
        with pytest.raises(jobs.JobBusy):
            jobs.drill(db, source.settings)
    assert busy.returncode == 75 and "another backup job is running" in busy.stderr
    assert len(jobs.make_tool(source.settings).info().backups) == before
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM backup_runs").scalar() == 0


def test_verify_finds_a_damaged_backup_file(source, db):
    jobs.run_backup(db, source.settings, "full")
    copy = source.base / f"repo-{uuid.uuid4().hex[:6]}"
    shutil.copytree(source.base / "repo", copy)
    for path in (copy, *copy.rglob("*")):
        shutil.chown(path, "postgres", "postgres")
    damaged = replace(source.settings, BACKUP_REPO_PATH=str(copy), BACKUP_WORK_DIR=str(copy) + "-work")
    clean = source.flask("verify", settings=damaged)
    assert clean.returncode == 0, clean.stderr

    newest = jobs.make_tool(damaged).info().newest.label
    victim = max((p for p in (copy / "backup" / "shop" / newest).rglob("*") if p.is_file()),
                 key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    found = source.flask("verify", settings=damaged)
    assert found.returncode == 4, found.stdout + found.stderr
    assert "checksum invalid: 1" in found.stderr or "checksum invalid: 1" in found.stdout


def test_the_repository_is_unreadable_without_its_key(source, db):
    jobs.run_backup(db, source.settings, "full")
    for path in (source.base / "repo").rglob("*"):
        if path.is_file():
            assert path.read_bytes()[:8] == b"Salted__", path  # OpenSSL's envelope: aes-256-cbc with a salt

    wrong = replace(source.settings, BACKUP_CIPHER_PASS="not-the-key", BACKUP_WORK_DIR=str(source.base / "work-x"))
    listing = source.flask("list", settings=wrong)
    assert listing.returncode == 1
    with pytest.raises(BackupError):
        jobs.make_tool(wrong).info()
    assert source.flask("list").returncode == 0  # with the key it reads


def test_production_refuses_a_missing_or_default_backup_key():
    for key in ("", Settings().BACKUP_CIPHER_PASS):
        assert any("BACKUP_CIPHER_PASS" in p for p in Settings(APP_ENV="production", BACKUP_CIPHER_PASS=key).problems())
    assert not any("BACKUP_CIPHER_PASS" in p for p in Settings(BACKUP_CIPHER_PASS="a-real-key").problems())


def test_backups_go_to_s3_over_tls(source, db):
    from tests.twins.s3tls import S3TlsTwin

    folder = source.base / "s3-twin"  # pgBackRest runs as postgres: it must read the CA file
    folder.mkdir(exist_ok=True)
    twin = S3TlsTwin(folder).start()
    s3 = replace(source.settings, BACKUP_REPO_TYPE="s3", BACKUP_REPO_PATH="/shop",
                 BACKUP_S3_BUCKET=twin.bucket("shop-backups"), S3_ENDPOINT_URL=twin.endpoint,
                 S3_ACCESS_KEY_ID="test-key", S3_SECRET_ACCESS_KEY="test-secret",
                 BACKUP_S3_CA_FILE=str(twin.ca_file), BACKUP_WORK_DIR=str(source.base / "work-s3"))
    tool = jobs.make_tool(s3)
    # The stanza first: a push PostgreSQL's archiver sees fail is retried only a minute later.
    tool.stanza_create()
    posix_command = source.sql("SHOW archive_command")[0][0]
    source.sql(f"ALTER SYSTEM SET archive_command = '{tool.archive_command()}'")
    source.sql("SELECT pg_reload_conf()")
    try:
        outcome = jobs.run_backup(db, s3, "full")
        jobs.check(db, s3)
        assert tool.info().newest.label == outcome.backup_label
    finally:
        source.sql(f"ALTER SYSTEM SET archive_command = '{posix_command}'")
        source.sql("SELECT pg_reload_conf()")
        twin.stop()


def test_beat_runs_the_four_backup_jobs_on_the_maintenance_queue(settings, celery_app):
    import celeryconfig

    schedule = celeryconfig.config(settings)["beat_schedule"]
    assert {name: schedule[name]["task"] for name in ("backups-full", "backups-diff", "backups-check",
                                                      "backups-drill")} == {
        "backups-full": "tasks.backups.full", "backups-diff": "tasks.backups.diff",
        "backups-check": "tasks.backups.check", "backups-drill": "tasks.backups.drill"}
    import tasks.backups  # noqa: F401  (a worker imports it at start)
    app = celery_app
    assert {app.tasks[f"tasks.backups.{job}"].queue for job in ("full", "diff", "check", "drill")} == {"maintenance"}
