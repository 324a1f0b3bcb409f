"""Core and ORM statements run as server-side prepared statements, opted into with `prepared(statement)`.

PostgreSQL parses, analyses and plans every statement psycopg2 sends as text; for the money path's statements
that was most of their server CPU (measured on their own: the stock reservation 408 -> 190 µs of the
backend's CPU prepared, the payment's lock 330 -> 92 µs, the paid move 403 -> 220 µs). A statement carrying
the `prepared` execution option is prepared once per server session (named by its text's hash, remembered in
the DBAPI connection's `info`, which a new connection starts without) and then only executed: SQLAlchemy still
compiles it, processes its parameters and its result rows as for any statement; only the text sent changes,
from the statement to `EXECUTE name(…)` (at the dialect's `do_execute`: listeners, logs and counts still see the
statement itself).

Values go as literals the prepared parameter's type takes: a list becomes an array literal ('{…}', untyped)
because psycopg2's ARRAY[…] is text[], which PostgreSQL does not coerce to uuid[] or int[].

A PREPARE survives its transaction's rollback (prepared statements are not transactional). A migration that
changes the type of a column such a statement returns makes its next run in each older server session fail
("cached plan must not change result type": a 503 or a task retry); that run marks it stale, and the next one
deallocates and prepares it again. A transaction-pooling proxy that does not keep server sessions would lose
them (connect to PostgreSQL or a session-pooling proxy). The catalog's own
text statements use `integrations.search.postgres.execute_prepared`, the same idea for `text()`.

`models.db.Database` attaches the hook to the engines it builds (`attach`); nothing is wired at import time.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine

OPTION = "prepared"
# feature_not_supported: "cached plan must not change result type", once a migration changed the type of a
# column the statement returns; the statement stays broken in that server session until prepared again
STALE_PLAN = "0A000"
PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


def prepared(statement):
    """`statement` (Core or ORM, built once) marked to run as a server-side prepared statement."""
    return statement.execution_options(**{OPTION: True})


def attach(engine: Engine) -> None:
    """Run `engine`'s marked statements prepared (wired by `Database` for the engines it builds; an engine
    without it runs them as plain statements)."""
    event.listen(engine, "do_execute", _execute_prepared)


def _execute_prepared(cursor, statement, parameters, context) -> bool | None:
    """Run a marked statement as EXECUTE (its PREPARE first, once per server session); True when it did. The
    engine's `before_cursor_execute` listeners and its log still see the statement itself."""
    if context is None or not context.execution_options.get(OPTION) or not isinstance(parameters, dict):
        return None
    name, names, prepare_sql, execute_sql = _forms(statement)
    info = context.root_connection.connection.info  # the server session's
    known, stale = info.setdefault("prepared_statements", set()), info.setdefault("stale_statements", set())
    if name not in known:
        if name in stale:
            cursor.execute(f"DEALLOCATE {name}")
            stale.discard(name)
        cursor.execute(prepare_sql)
        known.add(name)
    try:
        cursor.execute(execute_sql, {n: _literal(parameters[n]) for n in names})
    except Exception as exc:
        if getattr(exc, "pgcode", None) == STALE_PLAN:  # prepared again at its next run, in a new transaction
            known.discard(name)
            stale.add(name)
        raise
    return True


@lru_cache(maxsize=256)
def _forms(statement: str) -> tuple[str, list[str], str, str]:
    """Name, parameter names in $n order, PREPARE and EXECUTE texts of a psycopg2 (pyformat) statement."""
    names: list[str] = []

    def numbered(match: re.Match) -> str:
        if match.group(1) is None:
            return "%"  # the PREPARE text goes without parameters: psycopg2 does not unescape it
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    body = PLACEHOLDER.sub(numbered, statement)
    name = "p_" + hashlib.sha1(statement.encode()).hexdigest()[:24]  # noqa: S324 (a name, not a secret)
    arguments = ", ".join(f"%({n})s" for n in names)
    return name, names, f"PREPARE {name} AS {body}", f"EXECUTE {name}({arguments})" if names else f"EXECUTE {name}"


def _literal(value):
    """A list as an untyped array literal; anything else as psycopg2 adapts it."""
    if isinstance(value, list | tuple):
        return "{" + ",".join(_element(v) for v in value) + "}"
    return value


def _element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes | list | tuple):
        raise TypeError(f"no array literal for an element of type {type(value).__name__}")
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
