"""Object storage: one small interface over a local folder, S3 and (for inboxes) SFTP.

Keys are relative, slash-separated paths (`images/ab/cd.jpg`). Errors are
the two kinds every integration maps to; a missing key is `ObjectMissing`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from integrations.errors import PermanentError


class ObjectMissing(PermanentError):
    """No object under that key."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime | None = None


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's root."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in key:
        raise PermanentError(f"unsafe storage key {key!r}")
    return key


class Storage(ABC):
    """A flat namespace of keys holding bytes."""

    @abstractmethod
    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> None:
        """Store `data` under `key`, replacing what was there."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object; the caller closes it."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Objects whose key starts with `prefix`, in key order."""

    @abstractmethod
    def move(self, source: str, target: str) -> None:
        """Rename `source` to `target` (atomic where the store allows it)."""

    @abstractmethod
    def url(self, key: str, expires: int = 3600) -> str:
        """A URL a client can fetch the object from (public, or presigned for `expires` seconds)."""

    def read(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()
