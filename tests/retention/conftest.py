"""Fixtures of the retention tests: the identity fixtures, and rows made to look old."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.identity.conftest import db, make_app, user_of  # noqa: F401  (fixtures)
from tests.orders.conftest import make_variant  # noqa: F401  (fixture)


@pytest.fixture
def sql(db):  # noqa: F811
    """Run one statement in its own transaction; returns the rows of a query."""
    def run(statement: str, **params):
        with db.engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else result.rowcount
    return run


def counter(sql, kind: str) -> int:
    found = sql("SELECT purged_total FROM retention_counters WHERE kind = :kind", kind=kind)
    return found[0][0] if found else 0
