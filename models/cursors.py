"""The one codec of keyset cursors: every list gives out and reads back cursors through it.

A cursor is the last row's sort values and the listing's name, as JSON,
signed with HMAC-SHA256. Anything we did not issue (edited, forged, made
for another listing) is refused before its values reach a query, so huge
numbers, NaN or Infinity cannot come from a cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import uuid
from datetime import datetime

from models.errors import InvalidRequest

_key = os.urandom(32)  # replaced by configure(); a cursor then survives restarts and spans processes
MAX_LENGTH = 500


def configure(secret: str) -> None:
    """Sign with a key derived from the app's secret."""
    global _key
    _key = hashlib.sha256(b"cursor:" + secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(listing: str, payload: str) -> str:
    return _b64(hmac.new(_key, f"{listing}.{payload}".encode(), hashlib.sha256).digest()[:18])


def encode(listing: str, values: list) -> str:
    """A cursor for `listing` holding `values` (anything not a plain JSON scalar is sent as its text)."""
    plain = [v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v) for v in values]
    payload = _b64(json.dumps(plain, separators=(",", ":")).encode())
    return f"{payload}.{_signature(listing, payload)}"


def decode(cursor: str, listing: str) -> list:
    """The values of a cursor we gave out for `listing`; anything else is a 400 naming `cursor`."""
    payload, _, signature = cursor.partition(".")
    if len(cursor) <= MAX_LENGTH and hmac.compare_digest(signature.encode(), _signature(listing, payload).encode()):
        try:
            values = json.loads(_unb64(payload))
            if isinstance(values, list):
                return values
        except (ValueError, binascii.Error):
            pass
    raise InvalidRequest("the cursor is not one this listing gave out", {"cursor": ["not valid"]})


def parse(cursor: str | None, listing: str, *readers):
    """`decode`, then each value read by its reader (e.g. `datetime.fromisoformat`, `uuid.UUID`)."""
    if not cursor:
        return None
    values = decode(cursor, listing)
    try:
        if len(values) != len(readers):
            raise ValueError
        return tuple(read(str(value)) for read, value in zip(readers, values, strict=True))
    except (ValueError, ArithmeticError):
        raise InvalidRequest("the cursor is not one this listing gave out", {"cursor": ["not valid"]}) from None


def newest_first(listing: str, row) -> str:
    """The cursor after `row` in a newest-first list keyed by (created_at, id)."""
    return encode(listing, [row.created_at.isoformat(), row.id])


def read_newest_first(cursor: str | None, listing: str) -> tuple | None:
    """The (created_at, id) a `newest_first` cursor holds, or None without one."""
    return parse(cursor, listing, datetime.fromisoformat, uuid.UUID)
