"""Fixtures for imports: a local inbox, the pipeline run step by step, and the SFTP twin."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from models.db import Database
from models.imports.tables import FINISHED, ImportJob

DATA = Path(__file__).resolve().parent.parent / "data"


def drop(folder: Path, name: str, content: bytes | Path) -> Path:
    """Put a file in an inbox folder as if it arrived a while ago (past the settle time)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if isinstance(content, Path):
        shutil.copyfile(content, target)
    else:
        target.write_bytes(content)
    past = time.time() - 30
    os.utime(target, (past, past))
    return target


@pytest.fixture
def database(settings):
    db = Database(settings.DATABASE_URL)
    yield db
    db.dispose()


@pytest.fixture
def inbox(tmp_path) -> Path:
    return tmp_path / "inbox"


@pytest.fixture
def local_settings(settings, inbox, tmp_path):
    """Settings with one local-folder inbox and a private object store."""
    inbox.mkdir()
    return replace(settings, IMPORT_INBOXES=str(inbox), STORAGE_LOCAL_DIR=str(tmp_path / "storage"),
                   IMPORT_REPORT_EMAIL="merch@example.com", IMPORT_CHUNK_ROWS=3)


def run_steps(db: Database, settings, job_id) -> ImportJob:
    """Run a job's pipeline steps in this process, as the worker would, until it is finished."""
    from imports import pipeline

    pipeline.scan(db, settings, str(job_id))
    for _ in range(1000):
        job = get_job(db, job_id)
        if job.status != "running":
            break
        if pipeline.load(db, settings, str(job_id)) == "finish_import":
            break
    pipeline.finish(db, settings, str(job_id))
    job = get_job(db, job_id)
    assert job.status in FINISHED, job.status
    return job


def get_job(db: Database, job_id) -> ImportJob:
    with db.session() as session:
        job = session.get(ImportJob, job_id)
        session.expunge(job)
        return job


def only_job(db: Database) -> ImportJob:
    with db.session() as session:
        [job] = session.query(ImportJob).all()
        session.expunge(job)
        return job


def scalar(db: Database, sql: str, **params):
    with db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(db: Database, sql: str, **params) -> list:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def import_file(db, settings, inbox: Path, name: str, content: bytes | Path) -> ImportJob:
    """Drop a file in the local inbox, discover it and run its steps."""
    from imports import pipeline

    drop(inbox, name, content)
    before = {job for (job,) in rows(db, "SELECT id FROM import_jobs")}
    assert pipeline.discover(db, settings) >= 1
    [job_id] = {job for (job,) in rows(db, "SELECT id FROM import_jobs")} - before
    return run_steps(db, settings, job_id)


@pytest.fixture(scope="session")
def sshd_twin():
    """A real OpenSSH server on a loopback port, shared by the run."""
    from tests.twins.sshd import SSHDTwin

    twin = SSHDTwin().start()
    yield twin
    twin.stop()
