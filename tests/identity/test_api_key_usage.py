"""API keys at request time: served from Redis, revoked at once, used without a row lock, usage flushed exactly."""

from __future__ import annotations

import json
import multiprocessing
import threading
import uuid

import pytest
from sqlalchemy import event, text

from models.users.auth import digest
from models.users.key_access import ENTRY, TAKE_BATCH, KeyAccess, _apply
from tests.helpers import Statements, bearer
from tests.identity.conftest import events, rows
from tests.identity.test_api_keys import create

PERMS = "/api/v1/users/me/permissions"


@pytest.fixture
def admin_headers(app, user_of):
    return bearer(app, user_of("admin"))


@pytest.fixture
def access(app):
    return KeyAccess(app.extensions["shop"].redis)


def test_a_revoked_key_stops_at_once_although_its_entry_was_cached(app, client, admin_headers, db):
    created = create(client, admin_headers)
    key = {"X-API-Key": created["key"]}
    assert client.get("/api/v1/users", headers=key).status_code == 200
    redis = app.extensions["shop"].redis
    assert redis.exists(ENTRY + digest(created["key"]))  # served from the cache from now on
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin_headers).status_code == 204
    assert client.get("/api/v1/users", headers=key).status_code == 401
    # An entry written by a request that read the row just before the revocation is never served.
    redis.set(ENTRY + digest(created["key"]), json.dumps({"id": created["id"], "scopes": ["users:view_all"]}))
    assert client.get("/api/v1/users", headers=key).status_code == 401


def test_a_key_marked_revoked_is_refused_before_its_revocation_commits(app, client, admin_headers, access, db):
    created = create(client, admin_headers)
    [(key_id, key_hash)] = rows(db, "SELECT id, key_hash FROM api_keys")
    access.forget([(key_id, key_hash)])  # the revoking transaction has not committed yet
    assert client.get("/api/v1/users", headers={"X-API-Key": created["key"]}).status_code == 401
    assert not app.extensions["shop"].redis.exists(ENTRY + key_hash)


def test_an_erased_users_keys_stop_at_once(app, client, user_of, db):
    from models.retention.erasure import anonymise
    from web.auth.tokens import policy

    admin = user_of("admin")
    created = create(client, bearer(app, admin))
    key = {"X-API-Key": created["key"]}
    assert client.get("/api/v1/users", headers=key).status_code == 200
    with db.session() as session:
        assert anonymise(session, admin.id, reason="request", redis=app.extensions["shop"].redis,
                         policy=policy(app.extensions["shop"].settings))
    assert client.get("/api/v1/users", headers=key).status_code == 401


def test_a_cached_key_runs_no_sql_and_a_missed_one_locks_and_writes_nothing(app, client, admin_headers, db):
    created = create(client, admin_headers)
    key = {"X-API-Key": created["key"]}
    with Statements(db.engine) as sql:
        assert client.get(PERMS, headers=key).status_code == 200
    missed = sql.seen
    with Statements(db.engine) as sql:
        assert client.get(PERMS, headers=key).status_code == 200
    assert sql.seen == []
    assert len(missed) == 1 and missed[0].lstrip().startswith("SELECT") and "api_keys" in missed[0]
    assert "FOR UPDATE" not in missed[0].upper() and "FOR SHARE" not in missed[0].upper()
    assert rows(db, "SELECT count(*) FROM security_events WHERE kind = 'api_key_used'") == [(0,)]


def test_requests_with_one_key_go_through_while_its_row_is_locked(app, client, admin_headers, db):
    """Requests with one key do not queue on its row: they pass while another transaction holds it."""
    created = create(client, admin_headers)
    key = {"X-API-Key": created["key"]}
    db.engine.dispose()  # every new connection of the app refuses to wait for a lock
    event.listen(db.engine, "connect", _no_lock_waits)
    try:
        with db.engine.connect() as holder:
            holder.execute(text("SELECT 1 FROM api_keys WHERE id = :id FOR UPDATE"), {"id": created["id"]})
            statuses = [client.get("/api/v1/users", headers=key).status_code for _ in range(3)]
            waiting = holder.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()
            holder.rollback()
    finally:
        event.remove(db.engine, "connect", _no_lock_waits)
    assert statuses == [200, 200, 200] and waiting == 0


def _no_lock_waits(dbapi_connection, _record):
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '1ms'")


def _requests_with_key(settings, key: str, count: int, ready, go) -> None:
    """In a process of its own: `count` requests with `key` through a fresh app."""
    from web import create_app

    app = create_app(settings)
    client = app.test_client()
    ready.set()
    go.wait(60)
    for _ in range(count):
        assert client.get(PERMS, headers={"X-API-Key": key}).status_code == 200
    app.extensions["shop"].db.dispose()


def test_usage_counts_are_exact_after_flush_with_two_processes_and_two_flushes_at_once(
        app, client, settings, admin_headers, access, db):
    created = create(client, admin_headers)
    assert client.get(PERMS, headers={"X-API-Key": created["key"]}).status_code == 200
    per_process = 150
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    readies = [spawn.Event() for _ in range(2)]
    procs = [spawn.Process(target=_requests_with_key, args=(settings, created["key"], per_process, ready, go))
             for ready in readies]
    for proc in procs:
        proc.start()
    for ready in readies:
        assert ready.wait(120)
    go.set()
    flushed = []

    def flush_until_done():
        while any(proc.is_alive() for proc in procs):
            flushed.append(access.flush_usage(db.session))

    flushers = [threading.Thread(target=flush_until_done) for _ in range(2)]
    for thread in flushers:
        thread.start()
    for proc in procs:
        proc.join(180)
    for thread in flushers:
        thread.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    flushed.append(access.flush_usage(db.session))
    total = 1 + 2 * per_process
    assert sum(flushed) == total
    assert rows(db, "SELECT use_count FROM api_keys") == [(total,)]
    assert sum(details["requests"] for *_, details in events(db, "api_key_used")) == total
    assert access.pending_uses(created["id"]) == 0


def test_a_flush_that_died_after_its_commit_counts_nothing_twice(app, client, admin_headers, access, db):
    created = create(client, admin_headers)
    for _ in range(3):
        assert client.get(PERMS, headers={"X-API-Key": created["key"]}).status_code == 200
    redis = app.extensions["shop"].redis
    fields = redis.eval(TAKE_BATCH, 0, created["id"])
    batch = {k.decode(): v.decode() for k, v in zip(fields[::2], fields[1::2], strict=True)}
    with db.session() as session:
        assert _apply(session, uuid.UUID(created["id"]), batch) == 3
    # ... and died before dropping the batch from Redis; meanwhile the key was used again.
    assert client.get(PERMS, headers={"X-API-Key": created["key"]}).status_code == 200
    assert access.flush_usage(db.session) == 0  # the batch already applied is dropped, not added again
    assert access.flush_usage(db.session) == 1  # then the new use
    assert rows(db, "SELECT use_count FROM api_keys") == [(4,)]
    assert [details["requests"] for *_, details in events(db, "api_key_used")] == [3, 1]


def test_a_flush_holding_a_batch_others_applied_and_passed_counts_nothing(app, client, admin_headers, access, db):
    created = create(client, admin_headers)
    use = {"X-API-Key": created["key"]}
    assert client.get(PERMS, headers=use).status_code == 200
    fields = app.extensions["shop"].redis.eval(TAKE_BATCH, 0, created["id"])  # a slow flush reads the batch
    held = {k.decode(): v.decode() for k, v in zip(fields[::2], fields[1::2], strict=True)}
    assert access.flush_usage(db.session) == 1  # another flush applies and drops it
    assert client.get(PERMS, headers=use).status_code == 200
    assert access.flush_usage(db.session) == 1  # and the next batch too
    with db.session() as session:
        assert _apply(session, uuid.UUID(created["id"]), held) == 0  # the slow one then adds nothing
    assert rows(db, "SELECT use_count FROM api_keys") == [(2,)]


def test_the_flush_is_a_beat_job(settings, celery_app):
    import tasks.maintenance  # noqa: F401  (registers the task)
    from scheduler import beat_schedule

    celery = celery_app

    job = beat_schedule(settings)["api-keys-flush-usage"]
    assert job["task"] == "tasks.maintenance.flush_api_key_usage" in celery.tasks
    assert job["schedule"].total_seconds() == settings.API_KEY_USAGE_FLUSH_INTERVAL


def test_a_use_is_counted_once_per_request_even_when_its_command_is_sent_again(client, admin_headers, access, db):
    created = create(client, admin_headers)
    for _ in range(2):  # as redis-py sends it again when the answer timed out after Redis ran it
        access.verify(db.session, created["key"], "10.0.0.1", "request-1")
    access.verify(db.session, created["key"], "10.0.0.2", "request-2")
    assert access.flush_usage(db.session) == 2
    [(_, _, _, _, details)] = events(db, "api_key_used")
    assert details["ips"] == ["10.0.0.1", "10.0.0.2"] and details["distinct_ips"] == 2
