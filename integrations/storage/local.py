"""Object storage in a local folder (the development default)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from integrations.errors import TransientError
from integrations.storage.base import ObjectMissing, Storage, StoredObject, check_key


class LocalStorage(Storage):
    def __init__(self, root: Path, public_url: str):
        self.root = Path(root)
        self.public_url = public_url.rstrip("/")

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write beside, then rename: readers never see half a file.
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
                if isinstance(data, bytes):
                    tmp.write(data)
                else:
                    shutil.copyfileobj(data, tmp, 1024 * 1024)
            os.replace(tmp.name, path)
        except OSError as exc:
            raise TransientError(f"local storage: {exc}") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise TransientError(f"local storage: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith(".tmp-"):
                stat = path.stat()
                yield StoredObject(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def move(self, source: str, target: str) -> None:
        destination = self._path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(self._path(source), destination)
        except FileNotFoundError:
            raise ObjectMissing(source) from None

    def url(self, key: str, expires: int = 3600) -> str:
        return f"{self.public_url}/{check_key(key)}"
