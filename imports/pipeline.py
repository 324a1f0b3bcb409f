"""The import pipeline's steps; each is one task, short, and safe to run again.

discover → scan (claim into processing/, checksum, validate every row, count; chunk by chunk, each
recorded in import_scan_chunks, continuing in a new task after IMPORT_TASK_SECONDS)
→ load (chunks: COPY + merge, one transaction each, continuing in a new task
after IMPORT_TASK_SECONDS) → finish (move to processed/ or failed/, write
errors/<file>.csv, email a summary).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import posixpath
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from imports import inboxes, localcopy
from imports.feed import Chunk, FeedError, RowError, format_of, read_feed
from imports.load import (copy_in, forget_staged, merge, restage, stage, stage_read, staged_text, take_staged,
                          unstage_reserved)
from imports.readahead import ReadAhead
from imports.reports import error_rows, report_file
from imports.validate import SeenSkus, normalize, remember, validate
from integrations.errors import PermanentError, TransientError
from integrations.storage import ObjectMissing, Storage
from models.catalog.indexing import queue_indexing
from models.db import Database
from models.emails.actions import queue_email
from models.imports.tables import (ALL_OR_NOTHING, DUPLICATE, FAILED, PARTIALLY_FAILED, QUEUED, RUNNING, SUCCEEDED,
                                   ImportChunk, ImportJob, ImportScanChunk)
from models import task_names
from models.outbox import enqueue
from settings import Settings

log = logging.getLogger(__name__)

SCAN, LOAD, FINISH, FETCH = (task_names.SCAN_FILE, task_names.LOAD_CHUNKS, task_names.FINISH_IMPORT,
                             task_names.FETCH_IMAGES)
SETTLE_SECONDS = 2  # a file modified this recently may still be arriving
INLINE_ERRORS = 20


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def stored_name(job: ImportJob) -> str:
    """The name the job's file and report are kept under: the file's own when short and plain, else generated.

    The original name is data only (the job's `filename`): a name with
    newlines, non-ASCII characters or 255 bytes never becomes a key.
    """
    name = posixpath.basename(job.source_key)
    if SAFE_NAME.fullmatch(name):
        return name
    extension = posixpath.splitext(name)[1]
    return f"{job.id}{extension.lower() if SAFE_EXTENSION.fullmatch(extension) else ''}"


def display_name(name: str, limit: int = 200) -> str:
    """A file name fit for a subject line or a log: control characters replaced, length bounded."""
    name = CONTROL.sub("?", name)
    return name if len(name) <= limit else name[:limit - 1] + "…"


def processing_key(job: ImportJob) -> str:
    return f"processing/{stored_name(job)}"


# --- discover -------------------------------------------------------------------------------------------------

def discover(db: Database, settings: Settings) -> int:
    """Create a job (and queue its scan) for each file newly found at the top of an inbox."""
    created = 0
    now = datetime.now(UTC)
    for inbox in inboxes.configured_inboxes(settings):
        storage = inboxes.open_storage(settings, inbox.location)
        try:
            files = [item for item in storage.list() if "/" not in item.key and not item.key.startswith(".")
                     and not item.key.endswith((".part", ".tmp"))
                     and (item.modified is None or now - item.modified > timedelta(seconds=SETTLE_SECONDS))]
        except Exception:
            log.exception("inbox cannot be listed", extra={"inbox": inbox.name})
            continue
        finally:
            inboxes.close(storage)
        with db.session() as session:
            for item in files:
                created += _new_inbox_job(session, settings, inbox, item)
    return created


def _new_inbox_job(session: Session, settings: Settings, inbox: inboxes.Inbox, item) -> int:
    if session.scalar(select(ImportJob.id).where(ImportJob.inbox == inbox.name, ImportJob.source_key == item.key,
                                                 ImportJob.status == QUEUED)):
        return 0  # already started through the API (POST /imports with a source), not claimed yet
    job_id = uuid.uuid4()
    stamp = f"{item.size}:{item.modified.timestamp() if item.modified else ''}"
    inserted = session.scalar(insert(ImportJob).values(
        id=job_id, inbox=inbox.name, source_key=item.key, source_stamp=stamp, filename=item.key[:255],
        policy=inbox.policy, size=item.size, report_to=settings.IMPORT_REPORT_EMAIL or None,
    ).on_conflict_do_nothing().returning(ImportJob.id))
    if inserted is None:
        return 0
    enqueue(session, SCAN, job_id=job_id)
    return 1


# --- scan -----------------------------------------------------------------------------------------------------

class _Hashing:
    """A stream that hashes and counts what is read through it, and refuses to pass `limit` bytes."""

    def __init__(self, stream, limit: int):
        self.stream, self.limit = stream, limit
        self.digest, self.size = hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        self.size += len(data)
        if self.size > self.limit:
            raise FeedError(f"the file is larger than the {self.limit} bytes allowed")
        return data

    def drain(self) -> str:
        while self.read(1024 * 1024):
            pass
        return self.digest.hexdigest()


def scan(db: Database, settings: Settings, job_id: str) -> str:
    """Claim the file, check it whole and record its row errors; then queue the load or the finish."""
    with db.session() as session:
        job = session.get(ImportJob, uuid.UUID(job_id))
        if job is None or job.status != QUEUED:
            return "already scanned"
        session.expunge(job)
    storage = inboxes.open_storage(settings, inboxes.find_inbox(settings, job.inbox).location)
    try:
        return _scan(db, settings, storage, job)
    finally:
        inboxes.close(storage)


def _claim(storage: Storage, job: ImportJob) -> int | None:
    """Move the file into processing/ (done already counts); its size, if the store says."""
    try:
        storage.move(job.source_key, processing_key(job))
    except ObjectMissing:
        if not storage.exists(processing_key(job)):
            raise
    found = next(iter(storage.list(processing_key(job))), None)
    return found.size if found else None


def _scan(db: Database, settings: Settings, storage: Storage, job: ImportJob) -> str:
    started = datetime.now(UTC).replace(tzinfo=None)
    try:
        size = _claim(storage, job)
        fmt = format_of(job.filename, job.format)
        if size is not None and size > settings.IMPORT_MAX_BYTES:
            raise FeedError(f"the file has {size} bytes, more than the {settings.IMPORT_MAX_BYTES} allowed")
        source = _scan_source(settings, storage, job)
        if source is None:
            return _queue(db, SCAN, job.id)  # the local copy goes on in a new task
        with source as stream:
            result = _check_rows(db, settings, _Hashing(stream, settings.IMPORT_MAX_BYTES), fmt, job.id)
    except (FeedError, ObjectMissing, PermanentError) as exc:
        message = f"the file disappeared before it was read: {exc}" if isinstance(exc, ObjectMissing) else str(exc)
        return _refuse(db, job.id, FAILED, message, started, forget_scan=True)
    if result is None:
        return _queue(db, SCAN, job.id)
    with db.session() as session:
        locked = session.get(ImportJob, job.id, with_for_update=True)
        if locked.status != QUEUED:
            return "already scanned"
        locked.format, locked.checksum, locked.size = fmt, result.checksum, result.size
        locked.started_at = locked.started_at or started
        locked.rows_total, locked.rows_failed, locked.chunks_total = result.rows, result.failed, result.chunks
        duplicate_of = _claim_checksum(session, locked)
        if duplicate_of:
            _end(session, locked, DUPLICATE, f"the same file was already imported by job {duplicate_of}")
        elif locked.policy == ALL_OR_NOTHING and result.failed:
            _end(session, locked, FAILED, f"{result.failed} rows failed validation, so the whole file was refused "
                                          "(this inbox imports all rows or none)")
        else:
            locked.status = RUNNING
            parts = max(1, min(settings.IMPORT_MERGE_PARALLEL, result.chunks))
            for part in range(parts):
                enqueue(session, LOAD, job_id=job.id, part=part, parts=parts)
    return "scanned"


def _scan_source(settings: Settings, storage: Storage, job: ImportJob):
    """The stream the scan reads: a local copy of a remote file (None while it is still being made), else the file.

    The copy is what the load parts on this machine read too, so the file
    crosses the network once, and a scan resumed after a kill or a slice
    re-reads the chunks already checked from the local disk.
    """
    if not localcopy.worth_copying(storage):
        return storage.open(processing_key(job))
    copy = localcopy.fetch(storage, processing_key(job), job.id, settings.IMPORT_MAX_BYTES,
                           settings.IMPORT_TASK_SECONDS)
    return None if copy is None else open(copy, "rb")  # noqa: SIM115  (closed by the caller's with)


class _ScanResult:
    def __init__(self, rows: int, failed: int, chunks: int, checksum: str, size: int):
        self.rows, self.failed, self.chunks, self.checksum, self.size = rows, failed, chunks, checksum, size


def _check_rows(db: Database, settings: Settings, stream: _Hashing, fmt: str,
                job_id: uuid.UUID) -> _ScanResult | None:
    """Check the chunks not scanned yet, each recorded in its own transaction; None when a continuation must go on.

    Chunks scanned already (by a killed or sliced earlier run) are parsed
    again only to rebuild the file-wide SKU register, so nothing is counted
    twice and row numbers and duplicate SKUs come out as in one pass.
    """
    with db.session() as session:
        done = set(session.scalars(select(ImportScanChunk.chunk).where(ImportScanChunk.job_id == job_id)))
    seen, checked, started = SeenSkus(), 0, time.monotonic()
    # The chunks recorded are read for their SKUs alone (CSV): a resumed scan reaches its first chunk to check
    # in a fifth of the time, so a worker killed every few seconds still gets past it (docs/imports.md).
    with ReadAhead(read_feed(stream, fmt, settings.IMPORT_CHUNK_ROWS, skus_only=frozenset(done))) as chunks:
        for number, chunk in enumerate(chunks):
            if number in done:
                remember(chunk.frame, seen)
                continue
            if not checked:
                # The slice counts from the first chunk checked, not from the re-reading of those recorded:
                # counted from the start, a busy machine left each continuation a chunk or two of progress
                # after re-reading the rest, and a 1M-row scan crawled.
                started = time.monotonic()
            elif time.monotonic() - started > settings.IMPORT_TASK_SECONDS:
                return None
            checked += 1
            valid, errors = validate(chunk, seen)
            rows = set(chunk.frame["row_no"].tolist()) | {error.row_no for error in chunk.errors}
            if not _record_scanned(db, job_id, number, len(rows), errors, valid):
                return None
            log.info("import chunk scanned", extra={"job_id": str(job_id), "chunk": number, "at": time.time()})
    checksum = stream.drain()
    with db.session() as session:
        rows, failed, count = session.execute(
            select(func.coalesce(func.sum(ImportScanChunk.rows), 0),
                   func.coalesce(func.sum(ImportScanChunk.rows_failed), 0), func.count())
            .where(ImportScanChunk.job_id == job_id)).one()
    if not rows:
        raise FeedError("the file has no rows (a header alone, or nothing but blank lines)")
    return _ScanResult(rows, failed, count, checksum, stream.size)


def _record_scanned(db: Database, job_id: uuid.UUID, number: int, rows: int, errors: list[RowError],
                    valid: pd.DataFrame) -> bool:
    """Record one chunk's count, row errors and valid rows (staged), once; False when the job is no longer scanned.

    The valid rows, normalised, go into import_staging in the same transaction, so the load merges them
    without reading the file again; a chunk is recorded with all of them or none. Staged rows whose stock
    is below what open orders hold of their variant are taken out again, and reported.
    """
    staged = staged_text(job_id, number, valid) if len(valid) else None
    with db.session() as session:
        job = session.get(ImportJob, job_id, with_for_update=True)
        if job.status != QUEUED:
            return False
        if session.get(ImportScanChunk, (job_id, number)) is None:
            if staged is not None:
                stage(session, staged)
                errors = errors + _stock_conflicts(session, job_id, number, valid)
            if errors:
                _record_errors(session, job_id, errors)
            session.add(ImportScanChunk(job_id=job_id, chunk=number, rows=rows,
                                        rows_failed=len({error.row_no for error in errors})))
            job.updated_at = func.now()
    return True


def _stock_conflicts(session: Session, job_id: uuid.UUID, number: int, valid: pd.DataFrame) -> list[RowError]:
    """The chunk's staged rows whose stock is below the units open orders hold, unstaged, as row errors."""
    conflicts = unstage_reserved(session, job_id, number)
    if not conflicts:
        return []
    stock = dict(zip(valid["row_no"].tolist(), valid["stock"].tolist(), strict=True))  # as the file wrote it
    return [RowError(row, "stock", stock[row], f"stock {stock[row]} is below the {reserved} units open orders hold")
            for row, reserved in conflicts]


def _claim_checksum(session: Session, job: ImportJob) -> uuid.UUID | None:
    """Record the file's checksum for this job; the earlier job's id when that one already imported it."""
    claimed = session.scalar(text("""
        INSERT INTO imported_files (checksum, job_id) VALUES (:checksum, :job_id)
        ON CONFLICT (checksum) DO UPDATE SET job_id = EXCLUDED.job_id, created_at = now()
        WHERE imported_files.job_id = EXCLUDED.job_id
           OR (SELECT status FROM import_jobs WHERE id = imported_files.job_id) IN ('failed', 'duplicate')
        RETURNING job_id
    """), {"checksum": job.checksum, "job_id": job.id})
    if claimed is not None:
        return None
    return session.scalar(text("SELECT job_id FROM imported_files WHERE checksum = :c"), {"c": job.checksum})


def reap_stuck(db: Database, settings: Settings) -> int:
    """End as failed the jobs that made no progress for IMPORT_STUCK_AFTER seconds; how many.

    A step whose message RabbitMQ dead-lettered without the task failing (a
    worker killed on every delivery until `x-delivery-limit`) leaves its job
    queued or running; this gives it a final state, a report and an email.
    """
    localcopy.prune(settings.IMPORT_STUCK_AFTER)
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=settings.IMPORT_STUCK_AFTER)
    reaped = 0
    with db.session() as session:
        stuck = session.scalars(select(ImportJob).where(ImportJob.status.in_((QUEUED, RUNNING)),
                                                        ImportJob.updated_at < cutoff)
                                .with_for_update(skip_locked=True).limit(100))
        for job in stuck:
            _end(session, job, FAILED, f"the import made no progress for {settings.IMPORT_STUCK_AFTER:g} s: a step "
                                       "failed for good (see the imports dead-letter queue); import the file again")
            reaped += 1
    return reaped


def fail(db: Database, job_id: str, message: str) -> str:
    """End a job whose step failed for good (its file still goes to failed/ with a report)."""
    return _refuse(db, uuid.UUID(job_id), FAILED, message)


def _refuse(db: Database, job_id: uuid.UUID, status: str, message: str, started: datetime | None = None,
            forget_scan: bool = False) -> str:
    with db.session() as session:
        job = session.get(ImportJob, job_id, with_for_update=True)
        if job.status in (QUEUED, RUNNING):
            if forget_scan:  # a file refused whole reports why, not the rows checked before it was
                session.execute(text("DELETE FROM import_errors WHERE job_id = :j"), {"j": job_id})
            job.started_at = job.started_at or started
            _end(session, job, status, message)
    return status


def _end(session: Session, job: ImportJob, status: str, message: str) -> None:
    """Set the job's final status (the files are moved by the finish step it queues).

    A job still being scanned loses its staged rows here, in the transaction that ends it (nothing merges
    them). A running job's go in the finish, which deletes them before it locks the job's row, in the order
    a merging part takes the two: deleting them here, under the job's lock, could deadlock with a part.
    """
    if job.status == QUEUED:
        forget_staged(session, job.id)
    job.status, job.message = status, message[:2000]
    enqueue(session, FINISH, job_id=job.id)


# --- load -----------------------------------------------------------------------------------------------------

def load(db: Database, settings: Settings, job_id: str, part: int = 0, parts: int = 1) -> str:
    """Merge this part's chunks not merged yet; a continuation after IMPORT_TASK_SECONDS.

    The scan queues IMPORT_MERGE_PARALLEL parts, which run at once on as many
    worker processes; each merges one contiguous run of the file's chunks
    (`part_of`) from the rows the scan staged, in SQL alone. Only when
    PostgreSQL lost staged rows (an UNLOGGED table is emptied by a crash) does
    a part read the file again, for the chunks missing. The transaction that
    merges a file's last chunk queues the finish. "finish_import" when every
    chunk of the file is merged.
    """
    with db.session() as session:
        job = session.get(ImportJob, uuid.UUID(job_id))
        if job is None or job.status != RUNNING:
            return "not running"
        done = set(session.scalars(select(ImportChunk.chunk).where(ImportChunk.job_id == job.id)))
        scanned = {chunk: (rows, rows - failed) for chunk, rows, failed in session.execute(
            select(ImportScanChunk.chunk, ImportScanChunk.rows, ImportScanChunk.rows_failed)
            .where(ImportScanChunk.job_id == job.id))}
        session.expunge(job)
    total = job.chunks_total or 0
    if len(done) >= total:
        return _queue(db, FINISH, job.id)  # a redelivery after the last chunk: finishing twice changes nothing
    mine = [number for number in range(total) if part_of(number, total, parts) == part and number not in done]
    if not mine:
        return "part merged"
    with db.session() as session:
        lost = _lost_chunks(session, job.id, [number for number in mine if scanned[number][1]])
    if not lost:
        return _load(db, settings, ((number, None) for number in mine), job, scanned, mine[-1], part, parts)
    log.warning("import chunks staged by the scan are gone; reading them from the file again",
                extra={"job_id": job_id, "chunks": sorted(lost)})
    local = localcopy.open_copy(job.id, job.size)  # the scan's copy, when it was made on this machine
    storage = None if local else inboxes.open_storage(settings, inboxes.find_inbox(settings, job.inbox).location)
    try:
        with local or storage.open(processing_key(job)) as stream, ReadAhead(_reread(
                read_feed(stream, job.format, settings.IMPORT_CHUNK_ROWS, frozenset(range(total)) - lost),
                mine, lost)) as chunks:
            return _load(db, settings, chunks, job, scanned, mine[-1], part, parts)
    except (FeedError, ObjectMissing, PermanentError) as exc:
        why = "the file was removed while it was being imported" if isinstance(exc, ObjectMissing) else str(exc)
        return _refuse(db, job.id, FAILED, why)
    finally:
        if storage is not None:
            inboxes.close(storage)


def part_of(chunk: int, chunks: int, parts: int) -> int:
    """The part that merges `chunk`: the first chunks/parts chunks go to part 0, the next to part 1…

    Contiguous rather than interleaved: each part's chunks are one run of the file, so a part that must
    read the file again (staged rows lost) stops reading at its last chunk.
    """
    return chunk * parts // chunks


def _lost_chunks(session: Session, job_id: uuid.UUID, chunks: list[int]) -> frozenset[int]:
    """The chunks among `chunks` (each with rows to merge) of which import_staging holds no row."""
    return frozenset(session.scalars(text("""
        SELECT c FROM unnest(CAST(:chunks AS integer[])) AS c
        WHERE NOT EXISTS (SELECT 1 FROM import_staging s WHERE s.job_id = :job_id AND s.chunk = c)
    """), {"job_id": job_id, "chunks": chunks}))


def _reread(chunks: Iterator[Chunk | None], mine: list[int],
            lost: frozenset[int]) -> Iterator[tuple[int, tuple[Chunk, pd.DataFrame] | None]]:
    """This part's chunks in file order: those `lost` read and normalised from the file, the others None (staged)."""
    wanted, last = set(mine), mine[-1]
    for number, chunk in enumerate(chunks):
        if number in wanted:
            yield number, ((chunk, normalize(chunk)) if number in lost else None)
        if number >= last:
            return  # the rest of the file is other parts' chunks


def _load(db: Database, settings: Settings, chunks, job: ImportJob, scanned: dict[int, tuple[int, int]],
          last: int, part: int, parts: int) -> str:
    started = None  # the slice counts from the first chunk merged (as the scan's, see _check_rows)
    for number, read in chunks:
        started = started or time.monotonic()
        merged = _load_chunk(db, job.id, number, read, scanned[number], vector_config(settings))
        log.info("import chunk merged", extra={"job_id": str(job.id), "chunk": number, "part": part,
                                               "at": time.time()})
        if merged is STOPPED:
            return "stopped"
        if merged is ALL_MERGED:
            return FINISH.rsplit(".", 1)[-1]
        if time.monotonic() - started > settings.IMPORT_TASK_SECONDS and number != last:
            with db.session() as session:
                enqueue(session, LOAD, job_id=job.id, part=part, parts=parts)
            return LOAD.rsplit(".", 1)[-1]
    return "part merged"


RETRYABLE = {"40P01", "40001"}  # deadlock detected, serialization failure
STOPPED, MERGED, ALL_MERGED = "stopped", "merged", "all merged"


class _JobStopped(Exception):
    """The job left `running` while a chunk was being merged: the chunk's transaction is rolled back."""


def vector_config(settings: Settings) -> str | None:
    """The text search configuration the merge writes search vectors with: PostgreSQL search only."""
    return settings.SEARCH_TEXT_CONFIG if settings.SEARCH_BACKEND == "postgres" else None


def _load_chunk(db: Database, job_id: uuid.UUID, number: int, read: tuple[Chunk, pd.DataFrame] | None,
                scanned: tuple[int, int], text_config: str | None) -> str:
    try:
        return _merge_chunk(db, job_id, number, read, scanned, text_config)
    except _JobStopped:
        return STOPPED
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) in RETRYABLE:
            raise TransientError(f"chunk {number}: {exc.orig}") from exc
        raise


CLAIM_CHUNK = text("""
    INSERT INTO import_chunks (job_id, chunk, rows_imported, rows_failed) VALUES (:job_id, :chunk, 0, 0)
    ON CONFLICT DO NOTHING RETURNING chunk
""")
# Last in the chunk's transaction: the job's row is locked only from here to the commit, so chunks merge in
# parallel. The count runs as its own statement after it (a fresh snapshot, taken once the lock is held), so
# it sees every chunk committed before, and exactly one transaction, the last, sees them all.
ADD_COUNTS = text("""
    UPDATE import_jobs SET rows_imported = rows_imported + :imported,
                           rows_failed = COALESCE(rows_failed, 0) + :refused, updated_at = now()
    WHERE id = :job_id AND status = 'running'
    RETURNING chunks_total
""")


def _merge_chunk(db: Database, job_id: uuid.UUID, number: int, read: tuple[Chunk, pd.DataFrame] | None,
                 scanned: tuple[int, int], text_config: str | None = None) -> str:
    """Merge one chunk in one transaction, at most once; ALL_MERGED when it was the file's last.

    `read` is None when the scan's staged rows are there to merge (`scanned`: the chunk's rows and how many
    of them it staged), else the chunk read from the file again.
    """
    rows, expected = scanned
    with db.session() as session:
        if session.scalar(select(ImportJob.status).where(ImportJob.id == job_id)) != RUNNING:
            return STOPPED
        # Claimed first: a second merge of the same chunk waits here for the first to commit, then skips it.
        if session.scalar(CLAIM_CHUNK, {"job_id": job_id, "chunk": number}) is None:
            return MERGED
        if read is None:
            staged = take_staged(session, job_id, number)
            if staged != expected:  # lost since the part looked (a PostgreSQL restart): the retry reads the file
                raise TransientError(f"chunk {number}: {staged} rows staged, {expected} expected")
        else:
            staged = _stage_reread(session, job_id, number, *read)
        refused = _merge_or_split(session, job_id, text_config) if staged else []
        if refused:
            _record_errors(session, job_id, refused)
        imported = staged - len(refused)
        session.execute(text("UPDATE import_chunks SET rows_imported = :i, rows_failed = :f "
                             "WHERE job_id = :j AND chunk = :c"),
                        {"i": imported, "f": rows - imported, "j": job_id, "c": number})
        total = session.scalar(ADD_COUNTS, {"imported": imported, "refused": len(refused), "job_id": job_id})
        if total is None:
            raise _JobStopped()
        merged = session.scalar(select(func.count()).where(ImportChunk.job_id == job_id))
        if merged < total:
            return MERGED
        enqueue(session, FINISH, job_id=job_id)
    return ALL_MERGED


def _stage_reread(session: Session, job_id: uuid.UUID, number: int, chunk: Chunk, valid: pd.DataFrame) -> int:
    """Stage a chunk read from the file again, without the rows the scan rejected (import_errors); how many."""
    if len(valid):
        rejected = set(session.scalars(text(
            "SELECT row_no FROM import_errors WHERE job_id = :j AND row_no BETWEEN :first AND :last"),
            {"j": job_id, "first": int(chunk.frame["row_no"].min()), "last": int(chunk.frame["row_no"].max())}))
        valid = valid[~valid["row_no"].isin(rejected)]
    if len(valid):
        stage_read(session, job_id, number, valid)
    return len(valid)


# A chunk PostgreSQL refuses for one of these (bad data, a constraint, a value too
# big for an index) is split until the guilty rows are found; the others still go in.
ROW_REFUSALS = ("22", "23", "54")


def _merge_or_split(session: Session, job_id: uuid.UUID, text_config: str | None,
                    rows: list[int] | None = None) -> list[RowError]:
    """Merge `chunk_staging` (or only its `rows`) in a savepoint; when PostgreSQL refuses, halve down to the rows."""
    try:
        with session.begin_nested():
            if rows is not None:
                restage(session, rows)
            changed, images = merge(session, job_id, text_config)
    except DBAPIError as exc:
        code = getattr(exc.orig, "pgcode", None) or ""
        if not code.startswith(ROW_REFUSALS):
            raise
        if rows is None:  # the whole chunk: set aside, and its halves staged from it in turn
            rows = session.scalars(text("SELECT row_no FROM chunk_staging ORDER BY row_no")).all()
            session.execute(text("ALTER TABLE chunk_staging RENAME TO chunk_refused"))
        if len(rows) == 1:
            message = str(getattr(exc.orig, "diag", None) and exc.orig.diag.message_primary or exc.orig)
            return [RowError(int(rows[0]), "", "", f"refused by the database: {message}"[:500])]
        half = len(rows) // 2
        return (_merge_or_split(session, job_id, text_config, rows[:half])
                + _merge_or_split(session, job_id, text_config, rows[half:]))
    queue_indexing(session, changed, vectors_written=text_config is not None)
    for product_id, urls in images.items():
        enqueue(session, FETCH, product_id=product_id, urls=urls)
    return []


def _record_errors(session: Session, job_id: uuid.UUID, errors: list[RowError]) -> None:
    data = io.StringIO()
    csv.writer(data).writerows((job_id, *error) for error in errors)
    data.seek(0)
    _copy_errors(session, data)


def _copy_errors(session: Session, data) -> None:
    """COPY rejected cells (CSV lines: job, row, column, value, message) into import_errors."""
    copy_in(session, "import_errors", ("job_id", "row_no", '"column"', "value", "message"), data,
            not_null=('"column"', "value"))


def _queue(db: Database, task: str, job_id: uuid.UUID) -> str:
    with db.session() as session:
        enqueue(session, task, job_id=job_id)
    return task.rsplit(".", 1)[-1]


# --- finish ---------------------------------------------------------------------------------------------------

def final_status(job: ImportJob) -> str:
    if job.status in (FAILED, DUPLICATE):
        return job.status
    if not job.rows_failed:
        return SUCCEEDED
    return PARTIALLY_FAILED if job.rows_imported else FAILED


def finish(db: Database, settings: Settings, job_id: str) -> str:
    """Move the file to processed/ or failed/, write its reject report beside it, and email a summary."""
    with db.session() as session:
        job = session.get(ImportJob, uuid.UUID(job_id))
        if job is None or job.finished_at is not None or job.status == QUEUED:
            return "nothing to finish"
        session.expunge(job)
    status = final_status(job)
    note = ""
    report_key = None
    try:
        storage = inboxes.open_storage(settings, inboxes.find_inbox(settings, job.inbox).location)
    except Exception as exc:  # noqa: BLE001  (the job still ends; the file stays where it is)
        storage, note = None, f"the file could not be moved nor the report written: {exc}"
    if storage is not None:
        try:
            name = stored_name(job)
            _move_out(storage, job, f"{'processed' if status in (SUCCEEDED, PARTIALLY_FAILED) else 'failed'}/{name}")
            if job.rows_failed or status in (FAILED, DUPLICATE):
                report_key = _write_report(db, storage, job, f"errors/{name}.csv")
        except TransientError:
            raise  # retried; the task's last failure still ends the job (finish_anyway)
        except Exception as exc:  # noqa: BLE001  (a file that cannot be moved must not leave the job running)
            log.exception("import finish could not move the file or write the report", extra={"job_id": job_id})
            note = f"the file could not be moved or the report written ({type(exc).__name__}); see the job's errors"
        finally:
            inboxes.close(storage)
    return _finalize(db, job.id, status, report_key, note, storage.url(report_key) if report_key else "")


def finish_anyway(db: Database, job_id: str, message: str) -> str:
    """End a job whose finish step failed for good: its final status, without moving files."""
    with db.session() as session:
        job = session.get(ImportJob, uuid.UUID(job_id))
        if job is None:
            return "nothing to finish"
        status = FAILED if job.status == QUEUED else final_status(job)
    return _finalize(db, uuid.UUID(job_id), status, None, message, "")


def _finalize(db: Database, job_id: uuid.UUID, status: str, report_key: str | None, note: str, url: str) -> str:
    with db.session() as session:
        forget_staged(session, job_id)  # a job stopped midway (a step failed for good) leaves none behind
        locked = session.get(ImportJob, job_id, with_for_update=True)
        if locked.finished_at is not None:
            return "already finished"
        locked.status, locked.error_report_key = status, report_key
        if note:
            locked.message = f"{locked.message}; {note}"[:2000] if locked.message else note[:2000]
        locked.finished_at = func.now()
        locked.started_at = locked.started_at or func.now()
        _email_summary(session, locked, status, url)
    localcopy.remove(job_id)  # on this machine; copies left on others are pruned by inbox polling
    return status


def _move_out(storage: Storage, job: ImportJob, target: str) -> None:
    for source in (processing_key(job), job.source_key):
        try:
            storage.move(source, target)
            return
        except ObjectMissing:
            continue
    log.warning("import file not found to move", extra={"job_id": str(job.id), "target": target})


def _write_report(db: Database, storage: Storage, job: ImportJob, key: str) -> str:
    with db.session() as session:
        report = report_file(error_rows(session, job.id), job.message if job.status in (FAILED, DUPLICATE) else "")
    with report:
        storage.put(key, report, "text/csv")
    return key


def _email_summary(session: Session, job: ImportJob, status: str, report: str) -> None:
    if not job.report_to:
        return
    errors = [{"row": row, "column": column, "message": message}
              for row, column, _, message in error_rows(session, job.id, INLINE_ERRORS)]
    queue_email(session, job.report_to, "import_report", filename=display_name(job.filename), status=status,
                rows_total=job.rows_total or 0, rows_imported=job.rows_imported, rows_failed=job.rows_failed,
                message=job.message, errors=errors, report=report)
