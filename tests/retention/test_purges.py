"""The retention purges: what each kind removes, what it keeps, the dry run, the counters, the audit and the metric."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.old_orders import PER_ORDER, insert_old_orders, rows_per_table
from models.emails.tables import EmailMessage
from models.orders.tables import Order, ShippingAddress
from models.retention.purges import KINDS, Periods, pending, purge
from models.users.tables import Address, ApiKey, AuthSession, RecoveryCode, TotpCredential, User, UserToken
from scheduler import beat_schedule
from tests.identity.conftest import login
from tests.retention.conftest import counter

SEVEN_YEARS_AND_MORE = 2600  # days; the default period is 2557 (7 × 365 + 2 leap days)
WITHIN_SEVEN_YEARS = 2500


def periods(settings):
    return Periods.from_settings(settings)


def test_orders_past_seven_years_go_with_every_dependent_row_and_nothing_else(db, user_of, settings, sql):
    user = user_of()
    with db.engine.begin() as conn:
        insert_old_orders(conn, user.id, 5, SEVEN_YEARS_AND_MORE)
        insert_old_orders(conn, user.id, 3, WITHIN_SEVEN_YEARS)

    outcome = purge(db, periods(settings), "orders", chunk=2)

    assert (outcome.removed, outcome.finished) == (5, True)
    with db.engine.connect() as conn:
        assert rows_per_table(conn) == {"orders": 3, **{table: 3 * n for table, n in PER_ORDER.items()}}
    assert counter(sql, "orders") == 5
    event = sql("SELECT details FROM security_events WHERE kind = 'retention_purge'")
    assert [row[0] for row in event] == [{"purged": "orders", "removed": 5, "finished": True}]
    again = purge(db, periods(settings), "orders", chunk=2)
    assert again.removed == 0 and counter(sql, "orders") == 5  # idempotent: a second run finds nothing


def test_a_time_budget_stops_between_chunks_and_the_next_run_carries_on(db, user_of, settings, sql):
    user = user_of()
    with db.engine.begin() as conn:
        insert_old_orders(conn, user.id, 7, SEVEN_YEARS_AND_MORE)
    first = purge(db, periods(settings), "orders", chunk=3, seconds=0)
    assert (first.removed, first.finished) == (3, False)
    assert purge(db, periods(settings), "orders", chunk=3).removed == 4
    assert counter(sql, "orders") == 7


def _person_with_everything(db, email: str, *, active_days_ago: int, order_days_ago: int | None,
                            mfa: bool = True) -> uuid.UUID:
    """A customer with an address, MFA, a session, a token, an API key, an email and maybe an order."""
    from tests.helpers import make_user

    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=active_days_ago)
    with db.session() as session:
        user = make_user(session, "customer", email=email, first_name="Grace", last_name="Hopper")
        user.created_at = long_ago
        uid = user.id
        session.add_all([
            Address(user_id=uid, first_name="Grace", last_name="Hopper", line1="1 Navy Way", city="Arlington",
                    postal_code="22201", country="US"),
            TotpCredential(user_id=uid, secret="JBSWY3DPEHPK3PXP", confirmed_at=long_ago if mfa else None),
            RecoveryCode(user_id=uid, code_hash=uuid.uuid4().hex * 2),
            AuthSession(user_id=uid, created_at=long_ago),
            UserToken(user_id=uid, purpose="verify_email", token_hash=uuid.uuid4().hex * 2,
                      expires_at=datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)),
            ApiKey(name="grace's key", prefix=uuid.uuid4().hex[:12], key_hash="0" * 64, scopes=[], created_by=uid),
            EmailMessage(to_address=email, template="welcome", context={"name": "Grace"}, status="sent"),
        ])
        if order_days_ago is not None:
            placed = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=order_days_ago)
            order = Order(user_id=uid, currency="EUR", subtotal=Decimal(5), total=Decimal(5), created_at=placed)
            session.add(order)
            session.flush()
            session.add(ShippingAddress(order_id=order.id, first_name="Grace", last_name="Hopper",
                                        line1="1 Navy Way", city="Arlington", postal_code="22201", country="US"))
    return uid


def test_inactive_users_are_anonymised_and_their_orders_stay(db, user_of, settings, sql, client):
    gone = _person_with_everything(db, "gone@example.com", active_days_ago=1000, order_days_ago=900)
    buyer = _person_with_everything(db, "buyer@example.com", active_days_ago=1000, order_days_ago=300)
    recent = _person_with_everything(db, "recent@example.com", active_days_ago=10, order_days_ago=None)
    signed_in = _person_with_everything(db, "signed-in@example.com", active_days_ago=1000, order_days_ago=None,
                                        mfa=False)
    assert login(client, "signed-in@example.com").status_code == 200  # signing in counts as activity

    assert pending(db, periods(settings), "users") == 1
    assert purge(db, periods(settings), "users").removed == 1

    with db.session() as session:
        user = session.get(User, gone)
        assert (user.email, user.first_name, user.last_name) == (f"erased-{gone.hex}@erased.invalid", "", "")
        order = session.query(Order).filter_by(user_id=gone).one()
        assert session.get(ShippingAddress, order.id).line1 == "1 Navy Way"  # the order keeps its snapshot
        for kept in (buyer, recent, signed_in):
            assert not session.get(User, kept).email.startswith("erased-")
    for table in ("addresses", "totp_credentials", "recovery_codes", "auth_sessions", "user_tokens"):
        assert sql(f"SELECT count(*) FROM {table} WHERE user_id = :id", id=gone) == [(0,)], table
    assert sql("SELECT count(*) FROM api_keys WHERE created_by = :id", id=gone) == [(0,)]
    assert sql("SELECT count(*) FROM email_messages WHERE to_address = 'gone@example.com'") == [(0,)]
    assert sql("SELECT count(*) FROM email_messages") == [(3,)]
    assert sql("SELECT erased_at IS NOT NULL FROM user_lifecycle WHERE user_id = :id", id=gone) == [(True,)]
    assert login(client, "gone@example.com").status_code == 401
    assert purge(db, periods(settings), "users").removed == 0  # an erased account is not erased again


def test_every_other_kind_removes_only_what_is_past_its_period(db, user_of, settings, sql, tmp_path):
    user = user_of()
    sql("INSERT INTO security_events (kind, created_at) VALUES ('login', now() - interval '400 days'), "
        "('login', now() - interval '300 days')")
    sql("INSERT INTO auth_sessions (user_id, created_at) VALUES (:u, now() - interval '8 days'), (:u, now())",
        u=user.id)
    sql("INSERT INTO user_tokens (user_id, purpose, token_hash, expires_at, used_at) VALUES "
        "(:u, 'verify_email', repeat('a', 64), now() + interval '1 day', now() - interval '8 days'), "
        "(:u, 'verify_email', repeat('b', 64), now() - interval '8 days', NULL), "
        "(:u, 'verify_email', repeat('c', 64), now() + interval '1 day', NULL)", u=user.id)
    sql("INSERT INTO email_messages (id, to_address, template, status, created_at) VALUES "
        "(gen_random_uuid(), 'a@example.com', 'welcome', 'sent', now() - interval '91 days'), "
        "(gen_random_uuid(), 'a@example.com', 'welcome', 'queued', now() - interval '91 days'), "
        "(gen_random_uuid(), 'a@example.com', 'welcome', 'sent', now())")
    sql("INSERT INTO idempotency_keys (user_id, key, request_hash, response_code, response_body, created_at) "
        "VALUES (:u, 'old', repeat('a', 64), 201, '{}', now() - interval '2 days'), "
        "(:u, 'new', repeat('a', 64), 201, '{}', now())", u=user.id)
    sql("INSERT INTO webhook_events (provider, event_id, type, payload, received_at, processed_at) VALUES "
        "('stripe', 'evt_old', 'x', '{}', now() - interval '91 days', now() - interval '91 days'), "
        "('stripe', 'evt_new', 'x', '{}', now(), now())")
    sql("INSERT INTO export_jobs (id, kind, format, destination, status, created_at, updated_at) VALUES "
        "(gen_random_uuid(), 'orders', 'csv', 'upload', 'succeeded', now() - interval '91 days', now()), "
        "(gen_random_uuid(), 'orders', 'csv', 'upload', 'succeeded', now(), now())")
    expected = {"security_events": 1, "auth_sessions": 1, "user_tokens": 2, "email_messages": 1,
                "idempotency_keys": 1, "webhook_events": 1, "export_jobs": 1}
    assert {kind: pending(db, periods(settings), kind) for kind in expected} == expected
    assert {kind: purge(db, periods(settings), kind, chunk=1).removed for kind in expected} == expected
    assert sql("SELECT key FROM idempotency_keys") == [("new",)]
    assert sql("SELECT event_id FROM webhook_events") == [("evt_new",)]
    assert sql("SELECT count(*) FROM email_messages") == [(2,)]
    assert {kind: pending(db, periods(settings), kind) for kind in expected} == dict.fromkeys(expected, 0)


def test_an_old_import_leaves_storage_with_its_error_report(db, settings, sql, tmp_path):
    from imports.retention import StoredFiles

    local = dataclasses.replace(settings, STORAGE_LOCAL_DIR=str(tmp_path))
    area = tmp_path / "imports"
    for key in ("failed/feed.csv", "errors/feed.csv.csv", "processed/other.csv"):
        (area / key).parent.mkdir(parents=True, exist_ok=True)
        (area / key).write_text("sku,price\n")
    sql("INSERT INTO import_jobs (id, inbox, source_key, filename, status, error_report_key, created_at, updated_at) "
        "VALUES (gen_random_uuid(), 'upload', 'x-feed.csv', 'feed.csv', 'failed', 'errors/feed.csv.csv', "
        "now() - interval '91 days', now()), "
        "(gen_random_uuid(), 'upload', 'x-other.csv', 'other.csv', 'succeeded', NULL, now(), now())")
    sql("UPDATE import_jobs SET source_key = 'feed.csv' WHERE filename = 'feed.csv'")
    files = StoredFiles(local)
    assert purge(db, Periods.from_settings(local), "import_jobs", files=files).removed == 1
    files.close()
    assert sorted(p.relative_to(area).as_posix() for p in area.rglob("*.csv")) == ["processed/other.csv"]
    assert sql("SELECT filename FROM import_jobs") == [("other.csv",)]


def test_a_stale_staged_upload_leaves_with_any_file_written_for_it(db, settings, sql, tmp_path):
    """An upload whose store task never finished (dead-lettered) stays staged; after the period it goes,
    and so does a file a worker wrote before dying; a recent upload, still on its way, stays."""
    from imports.retention import StoredFiles
    from models.catalog.images import image_key

    local = dataclasses.replace(settings, STORAGE_LOCAL_DIR=str(tmp_path))
    product = sql("INSERT INTO products (handle, name) VALUES ('teapot', 'Teapot') RETURNING id")[0][0]
    stale, fresh = uuid.uuid4(), uuid.uuid4()
    sql("INSERT INTO staged_images (id, product_id, content_type, data, created_at) VALUES "
        "(:stale, :p, 'image/png', 'x', now() - interval '8 days'), (:fresh, :p, 'image/png', 'x', now())",
        stale=stale, fresh=fresh, p=product)
    for image in (stale, fresh):
        (tmp_path / image_key(product, image, "image/png")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / image_key(product, image, "image/png")).write_bytes(b"png")
    assert pending(db, Periods.from_settings(local), "staged_images") == 1
    files = StoredFiles(local)
    assert purge(db, Periods.from_settings(local), "staged_images", files=files).removed == 1
    files.close()
    assert sql("SELECT id FROM staged_images") == [(fresh,)]
    assert [p.name for p in tmp_path.rglob("*.png")] == [f"{fresh}.png"]
    assert counter(sql, "staged_images") == 1


def test_the_cli_dry_run_prints_and_removes_nothing_then_the_purge_and_status(app, db, user_of, sql):
    user = user_of()
    with db.engine.begin() as conn:
        insert_old_orders(conn, user.id, 4, SEVEN_YEARS_AND_MORE)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["retention", "purge", "--only", "orders", "--dry-run"])
    assert dry.exit_code == 0 and dry.output.startswith("orders: would remove 4 ("), dry.output
    assert sql("SELECT count(*) FROM orders") == [(4,)]
    done = runner.invoke(args=["retention", "purge", "--only", "orders", "--chunk", "3"])
    assert (done.exit_code, done.output) == (0, "orders: removed 4\n")
    status = runner.invoke(args=["retention", "status"])
    line = next(line for line in status.output.splitlines() if line.startswith("orders "))
    assert line.split()[:5] == ["orders", "2557", "days", "0", "4"], line
    assert "\nidempotency_keys   1 day " in status.output
    bad = runner.invoke(args=["retention", "purge", "--only", "everything"])
    assert bad.exit_code == 2 and "'everything' is not one of" in bad.output


def test_metrics_show_what_was_purged_and_when(client, db, user_of, settings):
    user = user_of()
    with db.engine.begin() as conn:
        insert_old_orders(conn, user.id, 2, SEVEN_YEARS_AND_MORE)
    purge(db, periods(settings), "orders")
    body = client.get("/metrics").get_data(as_text=True)
    assert 'shop_retention_purged_total{kind="orders"} 2.0' in body
    stamp = next(line for line in body.splitlines()
                 if line.startswith('shop_retention_last_run_timestamp_seconds{kind="orders"}'))
    assert abs(float(stamp.split()[-1]) - datetime.now(UTC).timestamp()) < 60


def test_beat_runs_every_kind_nightly_through_one_registered_task(settings, celery_app):
    app = celery_app
    import tasks.maintenance  # noqa: F401  (registers the task)

    jobs = {name: job for name, job in beat_schedule(settings).items() if name.startswith("retention-")}
    assert sorted(job["args"][0] for job in jobs.values()) == sorted(KINDS)
    assert {job["task"] for job in jobs.values()} == {"tasks.maintenance.retention_purge"}
    assert "tasks.maintenance.retention_purge" in app.tasks


def test_the_erase_command_replays_erasures_after_a_restore(app, user_of, sql):
    user = user_of()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["retention", "erase", str(user.id)])
    assert (first.exit_code, first.output) == (0, f"{user.id}: erased\n")
    again = runner.invoke(args=["retention", "erase", str(user.id)])
    assert again.output == f"{user.id}: nothing to erase (unknown or erased before)\n"
    assert sql("SELECT email LIKE 'erased-%' FROM users WHERE id = :id", id=user.id) == [(True,)]
    assert runner.invoke(args=["retention", "erase", "not-a-uuid"]).exit_code == 2


def test_an_account_anonymised_without_its_mark_is_marked_not_looped_on(db, user_of, settings, sql):
    from models.retention.erasure import erased_email

    done, due = user_of(), user_of()
    sql("UPDATE users SET email = :email, created_at = now() - interval '1000 days' WHERE id = :id",
        email=erased_email(done.id), id=done.id)
    sql("UPDATE users SET created_at = now() - interval '999 days' WHERE id = :id", id=due.id)
    assert purge(db, periods(settings), "users", chunk=1).removed == 0  # the first chunk finds nothing to do
    assert purge(db, periods(settings), "users", chunk=1).removed == 1  # and the next run goes past it
    assert pending(db, periods(settings), "users") == 0


def test_an_expired_orders_shipping_label_leaves_storage_with_it(db, user_of, settings, sql, tmp_path):
    from imports.retention import StoredFiles

    user = user_of()
    with db.engine.begin() as conn:
        insert_old_orders(conn, user.id, 1, SEVEN_YEARS_AND_MORE)
        insert_old_orders(conn, user.id, 1, WITHIN_SEVEN_YEARS)
    sql("UPDATE shipments s SET label_key = 'labels/' || s.order_id || '.pdf' FROM orders o WHERE o.id = s.order_id")
    labels = {order_id: tmp_path / "labels" / f"{order_id}.pdf"
              for (order_id,) in sql("SELECT id FROM orders ORDER BY created_at")}
    for path in labels.values():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"%PDF-1.4 label")
    files = StoredFiles(dataclasses.replace(settings, STORAGE_LOCAL_DIR=str(tmp_path)))
    assert purge(db, periods(settings), "orders", files=files).removed == 1
    files.close()
    old, new = labels.values()
    assert not old.exists() and new.exists()
