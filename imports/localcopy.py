"""A local copy of a file being imported, so a remote inbox's file crosses the network once.

The scan copies the file from its inbox (SFTP, S3) into the worker's
temporary directory (`TMPDIR`), then reads the copy; the load parts that run
on the same machine read the copy too, and those on another machine, or
after the copy is gone, read the inbox as before. The copy is made in
slices that resume where the last stopped (`<job>.part` grows, then is
renamed `<job>.feed`), so a worker killed while copying loses nothing it
wrote. A copy is only ever read once complete, and only when its size is
the size the scan recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from integrations.errors import TransientError
from integrations.storage import Storage

BLOCK = 1024 * 1024


def folder() -> Path:
    return Path(tempfile.gettempdir()) / "shop-imports"


def path_of(job_id) -> Path:
    return folder() / f"{job_id}.feed"


def fetch(storage: Storage, key: str, job_id, limit: int, seconds: float) -> Path | None:
    """The complete local copy of `key` (copied now, or on an earlier call); None when a slice ran out of time.

    A copy larger than `limit` bytes stops there: the scan reads it and
    refuses the file by its size, as it would the remote one.
    """
    done = path_of(job_id)
    if done.exists():
        return done
    folder().mkdir(mode=0o700, parents=True, exist_ok=True)
    part = done.with_suffix(".part")
    started = time.monotonic()
    with open(part, "ab") as local:
        try:  # one writer: a second delivery of the scan while the first still copies waits its turn
            fcntl.flock(local.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TransientError(f"the local copy of {key} is being written by another task") from None
        if done.exists():  # finished by the task that held the lock
            part.unlink(missing_ok=True)
            return done
        return _append(storage, key, local, part, done, limit, started + seconds)


def _append(storage: Storage, key: str, local, part: Path, done: Path, limit: int, deadline: float) -> Path | None:
    with storage.open(key) as remote:
        offset = local.tell()
        if offset:
            _skip(remote, offset)
        while block := remote.read(BLOCK):
            local.write(block)
            offset += len(block)
            if offset > limit:
                break
            if time.monotonic() > deadline:
                local.flush()
                os.fsync(local.fileno())
                return None
        local.flush()
        os.fsync(local.fileno())
    os.replace(part, done)
    return done


def _skip(remote: BinaryIO, offset: int) -> None:
    """Move `remote` past the `offset` bytes already copied (seeking when the stream can)."""
    try:
        remote.seek(offset)
        return
    except (AttributeError, OSError, ValueError):
        pass
    while offset:
        block = remote.read(min(BLOCK, offset))
        if not block:
            return
        offset -= len(block)


def open_copy(job_id, size: int | None) -> BinaryIO | None:
    """The local copy opened for reading when this machine holds it whole (of `size` bytes), else None."""
    done = path_of(job_id)
    try:
        stream = open(done, "rb")  # noqa: SIM115  (returned to the caller, who closes it)
    except OSError:
        return None
    if size is not None and os.fstat(stream.fileno()).st_size != size:
        stream.close()
        return None
    with contextlib.suppress(OSError):
        os.utime(done)  # in use: not pruned
    return stream


def worth_copying(storage: Storage) -> bool:
    """Whether reading `storage` costs a network transfer (SFTP, S3), so a local copy saves reading it again."""
    from integrations.storage.local import LocalStorage

    return not isinstance(storage, LocalStorage)


def remove(job_id) -> None:
    """The job's local copy, complete or partial, gone (from this machine)."""
    for path in (path_of(job_id), path_of(job_id).with_suffix(".part")):
        with contextlib.suppress(OSError):
            path.unlink()


def prune(older_than: float) -> int:
    """Remove copies untouched for `older_than` seconds (a job ended on another machine); how many."""
    removed, cutoff = 0, time.time() - older_than
    with contextlib.suppress(OSError):
        for path in folder().iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
    return removed
