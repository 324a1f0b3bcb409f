"""What the backup integration takes and returns: small dataclasses and its two errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from integrations.errors import PermanentError, TransientError


@dataclass(frozen=True)
class RepoConfig:
    """Where backups go and how they are kept: a POSIX folder or an S3 bucket, always encrypted."""

    stanza: str
    kind: str  # "posix" or "s3"
    path: str  # the folder (posix) or the key prefix inside the bucket (s3)
    cipher_pass: str
    retention_full: int = 2
    retention_diff: int = 7
    retention_archive: int = 2
    s3_bucket: str = ""
    s3_endpoint: str = ""  # host or host:port; pgBackRest always speaks TLS to it
    s3_region: str = "us-east-1"
    s3_key: str = ""
    s3_secret: str = ""
    s3_ca_file: str = ""
    s3_verify_tls: bool = True
    process_max: int = 1
    io_timeout: int = 60  # seconds per repository call; pgBackRest retries a few times within its budget


@dataclass(frozen=True)
class ClusterConfig:
    """The PostgreSQL cluster to back up, as pgBackRest reaches it (on this host, by its socket)."""

    data_dir: str
    port: int = 5432
    socket_dir: str = "/var/run/postgresql"
    user: str = "postgres"
    database: str = "postgres"
    bin_dir: str = ""  # where pg_ctl lives
    run_as: str = ""  # the OS user owning the cluster; empty: this process's user
    work_dir: Path = field(default_factory=lambda: Path("var/backups"))  # config, locks, logs, spool


@dataclass(frozen=True)
class Backup:
    """One backup set in the repository."""

    label: str
    type: str  # full, diff or incr
    started_at: datetime
    stopped_at: datetime
    size: int  # bytes of the database at backup time
    repo_size: int  # bytes stored in the repository (compressed, encrypted)
    wal_start: str
    wal_stop: str
    error: bool = False  # pages failed their checksum during the backup


@dataclass(frozen=True)
class RepoInfo:
    """What the repository holds for the stanza."""

    status: str  # "ok" or pgBackRest's message
    backups: list[Backup]
    archive_min: str | None = None
    archive_max: str | None = None

    @property
    def newest(self) -> Backup | None:
        return self.backups[-1] if self.backups else None

    @property
    def oldest(self) -> Backup | None:
        return self.backups[0] if self.backups else None


class BackupError(PermanentError):
    """pgBackRest refused or failed; `code` is its exit code, the message its own words."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class RepoDamaged(BackupError):
    """verify found backup or WAL files that are missing or fail their checksum."""


class RepoUnreachable(TransientError):
    """The repository (its host or bucket) cannot be reached now: try again later."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code
