"""Object storage in a folder of an SFTP server through paramiko (inboxes and export destinations).

The server's host key must be in the known-hosts file given: an unknown or
changed key is refused, never accepted on first use. Keys map to paths under
`root`; writes go to a temporary name and are renamed into place.
"""

from __future__ import annotations

import posixpath
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

import paramiko

from integrations.errors import PermanentError, TransientError
from integrations.storage.base import ObjectMissing, Storage, StoredObject, check_key
import contextlib


class SFTPStorage(Storage):
    def __init__(self, host: str, port: int, username: str, root: str, known_hosts: str, password: str = "",
                 key_filename: str = "", timeout: float = 10.0):
        self.host, self.port, self.username = host, port, username
        self.root = root.rstrip("/") or "/"
        self.known_hosts, self.password, self.key_filename = known_hosts, password, key_filename
        self.timeout = timeout
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._connect()
        return self._sftp

    def _connect(self) -> None:
        client = paramiko.SSHClient()
        if not self.known_hosts:
            raise PermanentError("sftp: no known-hosts file given (IMPORT_SFTP_KNOWN_HOSTS)")
        client.load_host_keys(self.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(self.host, self.port, self.username, password=self.password or None,
                           key_filename=self.key_filename or None, timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout,
                           allow_agent=False, look_for_keys=False)
        except (paramiko.BadHostKeyException, paramiko.AuthenticationException, paramiko.SSHException) as exc:
            client.close()
            if isinstance(exc, paramiko.BadHostKeyException | paramiko.AuthenticationException) \
                    or "not found in known_hosts" in str(exc):
                raise PermanentError(f"sftp {self.host}:{self.port}: {exc}") from exc
            raise TransientError(f"sftp {self.host}:{self.port}: {exc}") from exc
        except OSError as exc:
            client.close()
            raise TransientError(f"sftp {self.host}:{self.port}: {exc}") from exc
        self._client, self._sftp = client, client.open_sftp()
        self._sftp.get_channel().settimeout(self.timeout * 6)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, check_key(key))

    def _makedirs(self, folder: str) -> None:
        missing = []
        while folder not in ("", "/"):
            try:
                self.sftp.stat(folder)
                break
            except FileNotFoundError:
                missing.append(folder)
                folder = posixpath.dirname(folder)
        for path in reversed(missing):
            try:
                self.sftp.mkdir(path)
            except OSError:
                if not self._is_dir(path):
                    raise

    def _is_dir(self, path: str) -> bool:
        try:
            return stat.S_ISDIR(self.sftp.stat(path).st_mode)
        except FileNotFoundError:
            return False

    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> None:
        path = self._path(key)
        temporary = posixpath.join(posixpath.dirname(path), f".tmp-{uuid.uuid4().hex}")
        try:
            self._makedirs(posixpath.dirname(path))
            with self.sftp.open(temporary, "wb") as remote:
                remote.set_pipelined(True)
                if isinstance(data, bytes):
                    remote.write(data)
                else:
                    while block := data.read(1024 * 1024):
                        remote.write(block)
            self.sftp.posix_rename(temporary, path)
        except (TimeoutError, OSError, paramiko.SSHException) as exc:
            raise TransientError(f"sftp put {key}: {exc}") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            remote = self.sftp.open(self._path(key), "rb", bufsize=1024 * 1024)
            remote.prefetch()
            return remote
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        except (OSError, paramiko.SSHException) as exc:
            raise TransientError(f"sftp open {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            return stat.S_ISREG(self.sftp.stat(self._path(key)).st_mode)
        except FileNotFoundError:
            return False

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.sftp.remove(self._path(key))

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        found = [item for item in self._walk(self.root, "") if item.key.startswith(prefix)]
        yield from sorted(found, key=lambda item: item.key)

    def _walk(self, folder: str, relative: str) -> Iterator[StoredObject]:
        try:
            entries = self.sftp.listdir_attr(folder)
        except FileNotFoundError:
            return
        for entry in entries:
            key = f"{relative}{entry.filename}"
            if stat.S_ISDIR(entry.st_mode):
                yield from self._walk(posixpath.join(folder, entry.filename), key + "/")
            elif stat.S_ISREG(entry.st_mode) and not entry.filename.startswith(".tmp-"):
                yield StoredObject(key, entry.st_size, datetime.fromtimestamp(entry.st_mtime, UTC))

    def move(self, source: str, target: str) -> None:
        destination = self._path(target)
        try:
            self._makedirs(posixpath.dirname(destination))
            self.sftp.posix_rename(self._path(source), destination)
        except FileNotFoundError:
            raise ObjectMissing(source) from None
        except (OSError, paramiko.SSHException) as exc:
            raise TransientError(f"sftp move {source}: {exc}") from exc

    def url(self, key: str, expires: int = 3600) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}{self._path(key)}"
