"""Keyset cursors: what one listing gave out reads back; edited, foreign or oversized cursors are refused."""

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from models import cursors
from models.errors import InvalidRequest

pytestmark = pytest.mark.pure


def test_a_newest_first_cursor_reads_back_its_row():
    row = SimpleNamespace(created_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC), id=uuid.uuid4())
    assert cursors.read_newest_first(cursors.newest_first("orders", row), "orders") == (row.created_at, row.id)
    assert cursors.read_newest_first(None, "orders") is None and cursors.read_newest_first("", "orders") is None


def _tampered(cursor: str) -> str:
    payload, _, signature = cursor.partition(".")
    other = cursors._b64(b'["9999-12-31T00:00:00","x"]')
    return f"{other}.{signature}"


@pytest.mark.parametrize("make", [
    lambda good: _tampered(good),                                   # values edited, signature kept
    lambda good: good[:-1] + ("A" if good[-1] != "A" else "B"),     # signature edited
    lambda good: cursors.encode("products", ["2026-11-30T12:00:00", str(uuid.uuid4())]),  # another listing's
    lambda good: good + "x" * cursors.MAX_LENGTH,                   # too long to be ours
    lambda good: "not-a-cursor",
    lambda good: cursors.encode("orders", ["2026-11-30T12:00:00"]),  # ours, but one value short
    lambda good: cursors.encode("orders", ["yesterday", str(uuid.uuid4())]),  # ours, a value that does not read
])
def test_anything_we_did_not_issue_for_the_listing_is_a_400_naming_cursor(make):
    good = cursors.newest_first("orders", SimpleNamespace(created_at=datetime(2026, 11, 30, 12, 0),
                                                           id=uuid.uuid4()))
    with pytest.raises(InvalidRequest) as refused:
        cursors.read_newest_first(make(good), "orders")
    assert refused.value.errors == {"cursor": ["not valid"]}


def test_cursors_survive_a_restart_only_with_the_same_secret():
    cursors.configure("one secret")
    try:
        issued = cursors.encode("orders", [1, "a"])
        cursors.configure("one secret")
        assert cursors.decode(issued, "orders") == [1, "a"]
        cursors.configure("another secret")
        with pytest.raises(InvalidRequest):
            cursors.decode(issued, "orders")
    finally:
        cursors.configure("one secret")
