"""Per-table row counts and content checksums, to compare a restored cluster with its source."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

TABLES = text("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
              "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
Sums = dict[str, tuple[int, str]]


def table_checksums(conn: Connection) -> Sums:
    """{table: (rows, checksum)}: an order-independent sum of each row's MD5, so no sort is needed."""
    sums = {}
    for (table,) in conn.execute(TABLES).all():
        count, total = conn.execute(text(
            f"SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 15))::bit(60)::bigint), 0)::text "
            f"FROM {table} AS t")).one()
        sums[table] = (count, total)
    return sums


def checksums_at_restore_point(engine: Engine, name: str, lock_timeout: str = "30s") -> Sums:
    """Create restore point `name` and return the checksums of exactly what it holds.

    Writers are held off (SHARE locks) only while the restore point is written and a
    snapshot exported; the checksums are then read from that snapshot, so a recovery
    to `name` must reproduce them exactly.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as pin, \
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as reader:
        tables = [row[0] for row in pin.execute(TABLES).all()]
        pin.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
        pin.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        if tables:
            pin.execute(text(f"LOCK TABLE {', '.join(tables)} IN SHARE MODE"))
        pin.execute(text("SELECT pg_create_restore_point(:name)"), {"name": name})
        snapshot = pin.execute(text("SELECT pg_export_snapshot()")).scalar()
        reader.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
        reader.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
        pin.execute(text("COMMIT"))
        try:
            return table_checksums(reader)
        finally:
            reader.execute(text("ROLLBACK"))


def differences(source: Sums, restored: Sums) -> list[str]:
    """One line per table whose rows or checksum differ (or that exists on one side only)."""
    lines = []
    for table in sorted(set(source) | set(restored)):
        if source.get(table) != restored.get(table):
            lines.append(f"{table}: source {source.get(table)} restored {restored.get(table)}")
    return lines
