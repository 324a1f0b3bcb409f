"""Point-in-time recovery with the operator's commands (docs/backups.md runs the same ones)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine

from integrations.backups import ScratchCluster
from models.backups.checksums import table_checksums
from tests.backups.conftest import free_port
from tests.helpers import wait_for


def write_orders(source, user_id: str, count: int, tag: str) -> None:
    source.sql("INSERT INTO orders (user_id, currency, subtotal, total) "
               "SELECT :u, 'EUR', g, g + 4.95 FROM generate_series(1, :n) g", u=user_id, n=count)
    source.sql("UPDATE orders SET stock_state = :t WHERE stock_state = 'reserved'", t=tag)


def checksums_of(url: str) -> dict:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return table_checksums(conn)
    finally:
        engine.dispose()


def test_restore_to_a_point_in_time_brings_back_exactly_the_first_set(source):
    user_id = str(uuid.uuid4())
    source.sql("INSERT INTO users (id, email, password_hash, first_name, last_name) "
               "VALUES (:id, 'pitr@example.com', 'x', 'Ada', 'Lovelace')", id=user_id)
    run = source.flask("run", "--type", "full")
    assert run.returncode == 0, run.stderr
    assert "full backup" in run.stdout and "verified" in run.stdout
    assert "backup command end: completed successfully" in run.stderr  # pgBackRest's own progress

    # A restore reaches only times after the backup ended (pgBackRest keeps whole seconds).
    stopped = source.sql("SELECT now()")[0][0]
    wait_for(lambda: source.sql("SELECT now() > :t", t=stopped + timedelta(seconds=1))[0][0], 5,
             message="a second past the backup")
    write_orders(source, user_id, 300, "first")
    first = checksums_of(source.url)
    noted = source.sql("SELECT clock_timestamp()")[0][0]
    write_orders(source, user_id, 200, "second")
    source.sql("DELETE FROM orders WHERE total < 100")  # the accident
    segment = source.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
    source.sql("SELECT pg_switch_wal()")
    wait_for(lambda: source.sql("SELECT last_archived_wal >= :s FROM pg_stat_archiver", s=segment)[0][0], 60,
             message="the accident's WAL to reach the archive")

    target, port = source.base / "restored", free_port()
    restore = source.flask("restore", "--to", noted.isoformat(sep=" "), "--target", str(target), "--port",
                           str(port))
    restored = ScratchCluster(target, port, "", run_as="postgres")
    try:
        assert restore.returncode == 0, restore.stderr
        assert f"running on port {port}" in restore.stdout
        url = restored.url("shop")
        assert checksums_of(url) == first
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT stock_state, count(*) FROM orders GROUP BY 1").all() == \
                [("first", 300)]
        engine.dispose()

        # The same folder again: it holds data now, so it is refused unless forced.
        again = source.flask("restore", "--to", noted.isoformat(sep=" "), "--target", str(target))
        assert again.returncode == 2
        assert "belongs to a running PostgreSQL server" in again.stderr
        restored.stop()
        again = source.flask("restore", "--to", noted.isoformat(sep=" "), "--target", str(target))
        assert again.returncode == 2 and "is not empty" in again.stderr and "--force" in again.stderr
        forced = source.flask("restore", "--to", noted.isoformat(sep=" "), "--target", str(target), "--force")
        assert forced.returncode == 0, forced.stderr
    finally:
        restored.remove()


def test_a_time_outside_the_recoverable_window_is_refused_naming_it(source):
    if not source.flask("list").stdout.count("F "):
        assert source.flask("run").returncode == 0
    target = source.base / f"never-{uuid.uuid4().hex[:6]}"
    for moment in ("2001-01-01 00:00:00+00:00", (datetime.now(UTC) + timedelta(hours=1)).isoformat()):
        refused = source.flask("restore", "--to", moment, "--target", str(target))
        assert refused.returncode == 2
        assert "outside the recoverable window" in refused.stderr
        assert " .. " in refused.stderr  # the window itself is named
    no_offset = source.flask("restore", "--to", "2030-01-01 00:00:00", "--target", str(target))
    assert no_offset.returncode == 2 and "no UTC offset" in no_offset.stderr
    assert not target.exists()
