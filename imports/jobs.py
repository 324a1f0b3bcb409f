"""Starting imports from an upload or a file already in an inbox, and reading jobs back."""

from __future__ import annotations

import logging
import posixpath
import uuid
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from imports import inboxes
from imports.feed import FeedError, format_of
from imports.pipeline import SCAN, display_name
from models.db import Database
from models.errors import InvalidRequest, NotFound
from models.imports.tables import ImportJob
from models.outbox import enqueue
from models.users.permissions import Actor, authorize
from models.users.tables import User
from settings import Settings

log = logging.getLogger(__name__)

def _checked_format(filename: str, fmt: str | None) -> str:
    try:
        return format_of(filename, fmt)
    except FeedError as exc:
        raise InvalidRequest(str(exc), {"format": [str(exc)]}) from None


def _report_to(session: Session, actor: Actor, settings: Settings) -> str | None:
    user = session.get(User, actor.user_id) if actor.user_id else None
    return user.email if user else settings.IMPORT_REPORT_EMAIL or None


def start_upload(db: Database, settings: Settings, actor: Actor, filename: str, stream: BinaryIO,
                 fmt: str | None = None) -> ImportJob:
    """Store an uploaded file in the upload area, then record its job and queue its import.

    The file is stored before the job's transaction opens, so no database connection is held while it is
    written; if that transaction then fails, the stored file is removed again.
    """
    authorize(actor, "imports:create")
    # The name is data only (any characters, any length); the file is stored under the job's id.
    given = posixpath.basename((filename or "").replace("\\", "/")) or "upload"
    fmt = _checked_format(given, fmt)
    job = ImportJob(id=uuid.uuid4(), inbox=inboxes.UPLOAD, filename=display_name(given, 255), format=fmt,
                    created_by=actor.user_id)
    job.source_key = f"{job.id}.{fmt}"
    job.source_stamp = str(job.id)
    storage = inboxes.open_storage(settings, inboxes.UPLOAD)
    storage.put(job.source_key, stream)
    try:
        with db.session() as session:
            job.report_to = _report_to(session, actor, settings)
            session.add(job)
            enqueue(session, SCAN, job_id=job.id)
    except BaseException:
        _remove_quietly(storage, job.source_key)
        raise
    return job


def _remove_quietly(storage, key: str) -> None:
    try:
        storage.delete(key)
    except Exception:  # the job's transaction failed first: report that error, not this one
        log.warning("could not remove an upload whose job was not recorded", extra={"key": key}, exc_info=True)


def start_from_source(session: Session, settings: Settings, actor: Actor, source: str,
                      fmt: str | None = None) -> ImportJob:
    """Queue the import of a file already in a configured inbox (s3://bucket/key, sftp://path)."""
    authorize(actor, "imports:create")
    try:
        inbox, key = inboxes.resolve_source(settings, source)
        inboxes.check_key_form(key)
    except (inboxes.LocationError, ValueError) as exc:
        raise InvalidRequest(str(exc), {"source": [str(exc)]}) from None
    fmt = _checked_format(key, fmt)
    job = ImportJob(id=uuid.uuid4(), inbox=inbox.name, source_key=key, filename=posixpath.basename(key),
                    format=fmt, policy=inbox.policy, created_by=actor.user_id,
                    report_to=_report_to(session, actor, settings))
    job.source_stamp = str(job.id)
    session.add(job)
    enqueue(session, SCAN, job_id=job.id)
    return job


def get_job(session: Session, actor: Actor, job_id: uuid.UUID) -> ImportJob:
    authorize(actor, "imports:view")
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound("no such import")
    return job


def list_jobs(session: Session, actor: Actor, limit: int, before: tuple | None) -> list[ImportJob]:
    """Newest first; `before` is the (created_at, id) of the last job of the previous page."""
    authorize(actor, "imports:view")
    query = select(ImportJob).order_by(ImportJob.created_at.desc(), ImportJob.id.desc()).limit(limit)
    if before:
        query = query.where((ImportJob.created_at < before[0])
                            | ((ImportJob.created_at == before[0]) & (ImportJob.id < before[1])))
    return list(session.scalars(query))
