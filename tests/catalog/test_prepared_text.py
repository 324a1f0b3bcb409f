"""The catalog's text statements run prepared (`execute_prepared`): once per server session, and prepared again
after a migration changed the type of a column one returns."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from integrations.search.postgres import execute_prepared

SQL = "SELECT amount FROM catalog_probe WHERE id = ANY(CAST(:ids AS int[])) ORDER BY id"


def test_a_text_statement_a_migration_made_stale_fails_once_then_is_prepared_again(app):
    reads = app.extensions["shop"].db.reads  # autocommit: each statement its own transaction
    with reads.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE catalog_probe (id int PRIMARY KEY, amount int); "
                             "INSERT INTO catalog_probe VALUES (1, 7), (2, 8)")
        try:
            assert [r[0] for r in execute_prepared(conn, SQL, {"ids": [1, 2]})] == [7, 8]
            assert conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements WHERE strpos(statement, "
                                        "%(probe)s) > 0", {"probe": "catalog_probe"}).scalar() == 1
            with reads.connect() as other:  # a migration, from another session
                other.exec_driver_sql("ALTER TABLE catalog_probe ALTER COLUMN amount TYPE text")
            with pytest.raises(DBAPIError) as failed:
                execute_prepared(conn, SQL, {"ids": [1]})
            assert failed.value.orig.pgcode == "0A000"
            assert [r[0] for r in execute_prepared(conn, SQL, {"ids": [2]})] == ["8"]  # prepared again
            assert [r[0] for r in execute_prepared(conn, SQL, {"ids": [1, 2]})] == ["7", "8"]
        finally:
            conn.exec_driver_sql("DROP TABLE catalog_probe")
