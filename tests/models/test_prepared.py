"""Statements marked `prepared` run as server-side prepared statements: prepared once per server session, then
only executed, with SQLAlchemy's parameter and result processing unchanged."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Integer, Numeric, String, Uuid, event, text

from models.prepared import prepared

STATEMENT = prepared(text(
    "SELECT cardinality(CAST(:ids AS uuid[])) AS count, (CAST(:ids AS uuid[]))[1] AS first, "
    "CAST(:price AS numeric(12, 4)) * 2 AS twice, array_to_string(CAST(:names AS text[]), '|') AS names"
).columns(count=Integer(), first=Uuid(), twice=Numeric(12, 4), names=String()))


def runs(conn, name_like: str = "%") -> list[tuple]:
    """This server session's prepared statements: (statement text, executions)."""
    return [tuple(row) for row in conn.exec_driver_sql(
        "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements WHERE name LIKE %(n)s",
        {"n": name_like})]


def test_a_marked_statement_is_prepared_once_per_session_and_its_values_come_back_typed(app):
    engine = app.extensions["shop"].db.engine
    ids = [uuid.uuid4(), uuid.uuid4()]
    names = ['plain', 'with "quotes", commas\\ and {braces}', None]
    seen: list[str] = []

    def note(conn, cursor, statement, *_):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", note)
    try:
        with engine.connect() as conn:
            for attempt in range(3):
                row = conn.execute(STATEMENT, {"ids": ids, "price": Decimal("1.25"), "names": names}).one()
                assert (row.count, row.first, row.twice) == (2, ids[0], Decimal("2.5000"))
                assert row.names == 'plain|with "quotes", commas\\ and {braces}'  # NULL left out
                if attempt == 0:
                    conn.rollback()  # a PREPARE is not undone by its transaction's rollback
            [(prepared_text, executions)] = runs(conn, "p\\_%")
            assert executions == 3 and prepared_text.startswith("PREPARE p_") and "$1" in prepared_text
        with engine.connect() as conn:  # another checkout of the same server session: executed, not prepared again
            conn.execute(STATEMENT, {"ids": ids, "price": Decimal("1"), "names": []})
            assert [executions for _, executions in runs(conn, "p\\_%")] in ([4], [1])  # [1]: another connection
    finally:
        event.remove(engine, "before_cursor_execute", note)
    statements = [s for s in seen if "pg_prepared_statements" not in s]
    assert len(statements) == 4 and all(s.startswith("SELECT cardinality") for s in statements)  # as written


def test_a_new_server_session_prepares_again(app):
    engine = app.extensions["shop"].db.engine
    with engine.connect() as conn:
        conn.execute(STATEMENT, {"ids": [uuid.uuid4()], "price": Decimal("1"), "names": ["a"]})
        conn.invalidate()  # the server session is gone (a restart, a failover)
    engine.dispose()
    with engine.connect() as conn:
        assert conn.execute(STATEMENT, {"ids": [], "price": Decimal("3"), "names": ["b"]}).one().twice == Decimal("6")
        assert [executions for _, executions in runs(conn, "p\\_%")] == [1]


def test_unmarked_statements_are_sent_as_they_are(app):
    with app.extensions["shop"].db.engine.connect() as conn:
        assert conn.execute(text("SELECT CAST(:v AS int) + 1"), {"v": 1}).scalar() == 2
        assert runs(conn, "p\\_%") == []


def test_a_statement_whose_result_type_a_migration_changed_fails_once_then_is_prepared_again(app):
    """After ALTER … TYPE of a column it returns, a prepared statement fails in every older server session
    ("cached plan must not change result type") until prepared anew: the failing run marks it, the next one
    deallocates and prepares it again."""
    import pytest
    from sqlalchemy.exc import DBAPIError

    engine = app.extensions["shop"].db.engine
    statement = prepared(text("SELECT amount FROM prepared_probe WHERE id = :id").columns())
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE prepared_probe (id int PRIMARY KEY, amount int); "
                             "INSERT INTO prepared_probe VALUES (1, 7)")
    try:
        with engine.connect() as conn:
            assert conn.execute(statement, {"id": 1}).scalar() == 7
            conn.rollback()  # its lock on the table released, the statement still prepared in its session
            with engine.begin() as other:  # a migration, from another session
                other.exec_driver_sql("ALTER TABLE prepared_probe ALTER COLUMN amount TYPE text")
            with pytest.raises(DBAPIError) as failed:
                conn.execute(statement, {"id": 1})
            assert failed.value.orig.pgcode == "0A000"
            conn.rollback()
            assert conn.execute(statement, {"id": 1}).scalar() == "7"  # prepared again, the new type
            assert conn.execute(statement, {"id": 1}).scalar() == "7"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE prepared_probe")
