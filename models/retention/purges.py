"""The retention purges: one kind of data each, removed in short chunks, counted exactly once.

Each chunk is its own transaction: it locks a bounded batch of expired rows
(`FOR UPDATE SKIP LOCKED`, so it never waits on a row someone is using),
removes them, and bumps the kind's counter in the same commit. A run killed
at any point loses at most its open chunk, which rolls back whole; the next
run finds the rest still expired and carries on. Nothing is removed twice,
and an order never loses some of its rows without the others, because the
order row and everything hanging off it (ON DELETE CASCADE) go in one
statement. Files in storage (labels, stale uploads, import files and reports) are deleted
before the rows that name them commit; deleting a missing file is no error,
so a chunk redone after a kill deletes them again harmlessly.

`files` is an object with `delete_label(key)`, `delete_image(key)` and
`delete_import_files(inbox, source_key, report_key)` (see
`imports.retention.StoredFiles`), or None to leave storage alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.catalog.images import EXTENSIONS, image_key
from models.db import Database
from models.retention.erasure import anonymise
from models.retention.tables import RetentionCounter
from models.security.events import record_event
from models.users.permissions import SYSTEM


@dataclass(frozen=True)
class Periods:
    """How long each kind is kept (the settings, as timedeltas)."""

    users: timedelta
    orders: timedelta
    security_events: timedelta
    auth_sessions: timedelta
    user_tokens: timedelta
    email_messages: timedelta
    idempotency_keys: timedelta
    webhook_events: timedelta
    import_jobs: timedelta
    export_jobs: timedelta
    staged_images: timedelta

    @classmethod
    def from_settings(cls, settings) -> Periods:
        days = lambda n: timedelta(days=n)  # noqa: E731
        return cls(users=days(settings.RETENTION_USER_INACTIVE_DAYS), orders=days(settings.RETENTION_ORDER_DAYS),
                   security_events=days(settings.SECURITY_EVENT_RETENTION_DAYS),
                   auth_sessions=timedelta(seconds=settings.REFRESH_TOKEN_TTL),
                   user_tokens=days(settings.RETENTION_TOKEN_DAYS), email_messages=days(settings.RETENTION_EMAIL_DAYS),
                   idempotency_keys=timedelta(seconds=settings.IDEMPOTENCY_TTL),
                   webhook_events=days(settings.RETENTION_WEBHOOK_DAYS),
                   import_jobs=days(settings.RETENTION_IMPORT_DAYS), export_jobs=days(settings.RETENTION_EXPORT_DAYS),
                   staged_images=days(settings.RETENTION_STAGED_IMAGE_DAYS))


@dataclass(frozen=True)
class Kind:
    """One purge: which rows are expired (`expired` selects their keys, oldest first) and how they go."""

    name: str
    what: str
    expired: str  # SQL with :age; returns one key column; appended with ORDER/LIMIT by the runner
    remove: Callable[[Session, list, object], int]  # (session, keys, files or None) -> rows removed
    lock: str = "FOR UPDATE SKIP LOCKED"  # never wait for a row in use: it is taken on a later run


def _delete(table: str, key: str = "id") -> Callable[[Session, list, object], int]:
    # Tables without a single-column key are purged by the physical row id of the rows locked in this transaction.
    match = "ctid = ANY(CAST(:keys AS tid[]))" if key == "ctid" else f"{key} = ANY(:keys)"

    def remove(session: Session, keys: list, _files) -> int:
        return session.execute(text(f"DELETE FROM {table} WHERE {match}"), {"keys": keys}).rowcount
    return remove


def _remove_orders(session: Session, keys: list, files) -> int:
    """Shipping labels (they show the address) leave storage first, then the orders with every dependent row."""
    if files is not None:
        for label in session.scalars(text("SELECT label_key FROM shipments WHERE order_id = ANY(:keys) "
                                          "AND label_key IS NOT NULL"), {"keys": keys}):
            files.delete_label(label)
    return _delete("orders")(session, keys, files)


def _anonymise_users(session: Session, keys: list, _files) -> int:
    return sum(anonymise(session, user_id, reason="inactive", actor=SYSTEM) for user_id in keys)


def _remove_imports(session: Session, keys: list, files) -> int:
    """The file (in processed/ or failed/) and its error report leave storage first; the job goes with its errors."""
    if files is not None:
        for inbox, source_key, report_key in session.execute(text(
                "SELECT inbox, source_key, error_report_key FROM import_jobs WHERE id = ANY(:keys)"), {"keys": keys}):
            files.delete_import_files(inbox, source_key, report_key)
    return _delete("import_jobs")(session, keys, files)


def _remove_staged_images(session: Session, keys: list, files) -> int:
    """An upload never stored: the file a worker may have written before it died leaves storage, then the row.

    A staged row and its image row are never both committed (the image's
    transaction deletes the staged row), so that file is no image's.
    """
    if files is not None:
        for product_id, image_id, content_type in session.execute(text(
                "SELECT product_id, id, content_type FROM staged_images WHERE id = ANY(:keys)"), {"keys": keys}):
            if content_type in EXTENSIONS:
                files.delete_image(image_key(product_id, image_id, content_type))
    return _delete("staged_images")(session, keys, files)


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("users", "accounts with no sign-in or order for the period: anonymised (orders kept)",
         "SELECT u.id FROM users u LEFT JOIN user_lifecycle l ON l.user_id = u.id "
         "WHERE l.erased_at IS NULL AND u.role <> 'super_admin' "
         "AND coalesce(l.last_active_at, u.created_at) < now() - :age "
         "AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.created_at >= now() - :age) "
         "ORDER BY coalesce(l.last_active_at, u.created_at)", _anonymise_users, "FOR UPDATE OF u SKIP LOCKED"),
    Kind("orders", "orders placed before the period, with items, addresses, events, payments, refunds, returns, "
         "shipments and labels",
         "SELECT id FROM orders WHERE created_at < now() - :age ORDER BY created_at", _remove_orders),
    Kind("security_events", "security (audit) events",
         "SELECT id FROM security_events WHERE created_at < now() - :age ORDER BY id", _delete("security_events")),
    Kind("auth_sessions", "sessions whose refresh tokens have all expired (tokens with them)",
         # A family never outlives its first token's expiry, so older sessions are dead.
         "SELECT id FROM auth_sessions WHERE created_at < now() - :age ORDER BY created_at",
         _delete("auth_sessions")),
    Kind("user_tokens", "email verification and other one-time tokens, the period after use or expiry",
         "SELECT id FROM user_tokens WHERE coalesce(used_at, expires_at) < now() - :age ORDER BY created_at",
         _delete("user_tokens")),
    Kind("email_messages", "emails sent or given up (their bodies hold personal data)",
         "SELECT id FROM email_messages WHERE created_at < now() - :age AND status NOT IN ('queued', 'sending') "
         "ORDER BY created_at", _delete("email_messages")),
    Kind("idempotency_keys", "stored first answers to Idempotency-Key requests",
         "SELECT ctid FROM idempotency_keys WHERE created_at < now() - :age ORDER BY created_at",
         _delete("idempotency_keys", "ctid")),
    Kind("webhook_events", "processed payment provider events (their payloads name the payer)",
         "SELECT ctid FROM webhook_events WHERE received_at < now() - :age AND processed_at IS NOT NULL "
         "ORDER BY received_at", _delete("webhook_events", "ctid")),
    Kind("import_jobs", "finished imports with their row errors and error reports in storage",
         "SELECT id FROM import_jobs WHERE created_at < now() - :age "
         "AND status IN ('succeeded', 'partially_failed', 'failed', 'duplicate') ORDER BY created_at",
         _remove_imports),
    Kind("export_jobs", "finished export records (the files belong to their destinations)",
         "SELECT id FROM export_jobs WHERE created_at < now() - :age AND status IN ('succeeded', 'failed') "
         "ORDER BY created_at", _delete("export_jobs")),
    Kind("staged_images", "image uploads never stored (their task dead-lettered), with any file written for them",
         "SELECT id FROM staged_images WHERE created_at < now() - :age ORDER BY created_at",
         _remove_staged_images),
)}


@dataclass
class Outcome:
    kind: str
    removed: int = 0
    finished: bool = True


def pending(db: Database, periods: Periods, kind: str) -> int:
    """How many rows the kind would remove now (the dry run)."""
    with db.session() as session:
        return session.scalar(text(f"SELECT count(*) FROM ({KINDS[kind].expired}) expired"),
                              {"age": getattr(periods, kind)})


def _chunk(session: Session, kind: Kind, age: timedelta, size: int, files) -> int:
    session.execute(text("SET LOCAL lock_timeout = '2s'"))
    session.execute(text("SET LOCAL statement_timeout = '60s'"))
    # The commit need not wait for its WAL flush (leaving the disk to checkouts): a crash can lose only
    # whole chunks, rows and counter together, and the next run simply removes those rows again.
    session.execute(text("SET LOCAL synchronous_commit = off"))
    keys = list(session.scalars(text(f"{kind.expired} LIMIT :limit {kind.lock}"),
                                {"age": age, "limit": size}))
    if not keys:
        return 0
    removed = kind.remove(session, keys, files)
    _bump(session, kind.name, removed)
    return removed


def _bump(session: Session, kind: str, removed: int) -> None:
    stmt = insert(RetentionCounter).values(kind=kind, purged_total=removed)
    session.execute(stmt.on_conflict_do_update(index_elements=[RetentionCounter.kind], set_={
        "purged_total": RetentionCounter.purged_total + stmt.excluded.purged_total}))


def _finish(session: Session, kind: str, removed: int) -> None:
    stmt = insert(RetentionCounter).values(kind=kind, last_run_at=func.now(), last_purged=removed)
    session.execute(stmt.on_conflict_do_update(index_elements=[RetentionCounter.kind], set_={
        "last_run_at": func.now(), "last_purged": stmt.excluded.last_purged}))


def purge(db: Database, periods: Periods, kind: str, *, chunk: int = 1000, seconds: float | None = None,
          pause_ratio: float = 0.0, files=None) -> Outcome:
    """Remove the kind's expired rows chunk by chunk; stop early (finished=False) once `seconds` have passed.

    After each chunk the purge sleeps `pause_ratio` times as long as the chunk took, leaving the
    database to the shop for that share of the time.
    """
    spec, age = KINDS[kind], getattr(periods, kind)
    outcome, started = Outcome(kind), time.monotonic()
    while True:
        chunk_started = time.monotonic()
        with db.session() as session:
            removed = _chunk(session, spec, age, chunk, files)
        if not removed:  # nothing left (or nothing that would go: never loop on it)
            break
        outcome.removed += removed
        if seconds is not None and time.monotonic() - started >= seconds:
            outcome.finished = False
            break
        time.sleep((time.monotonic() - chunk_started) * pause_ratio)
    with db.session() as session:
        _finish(session, kind, outcome.removed)
        record_event(session, "retention_purge", SYSTEM, purged=kind, removed=outcome.removed,
                     finished=outcome.finished)
    return outcome


def status(db: Database, periods: Periods) -> list[dict]:
    """Per kind: its period, what it would remove now, what it removed so far and when it last ran."""
    with db.session() as session:
        counters = {c.kind: c for c in session.scalars(select(RetentionCounter))}
    rows = []
    for name, spec in KINDS.items():
        counter = counters.get(name)
        rows.append({"kind": name, "keep": getattr(periods, name), "what": spec.what,
                     "pending": pending(db, periods, name),
                     "purged_total": counter.purged_total if counter else 0,
                     "last_run_at": counter.last_run_at if counter else None})
    return rows
