"""A scratch PostgreSQL 15 cluster with WAL archiving to a pgBackRest repository, made and dropped by the tests.

The machine's own server (5432) keeps archiving off and is never touched: the
cluster here runs as the postgres user on a free loopback port, its data,
socket, repository and pgBackRest files in one temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from integrations.backups import ScratchCluster
from models.backups.jobs import make_tool
from settings import ROOT, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Source:
    """The archived cluster, the settings that point the backup jobs at it, and a CLI runner."""

    cluster: ScratchCluster
    settings: Settings
    base: Path

    @property
    def url(self) -> str:
        return self.settings.BACKUP_DATABASE_URL

    def env(self, settings: Settings | None = None) -> dict[str, str]:
        """The environment a process needs to see `settings`' backup variables."""
        settings = settings or self.settings
        return {name: str(getattr(settings, name)) for name in settings.__dataclass_fields__
                if name.startswith("BACKUP_")}

    def flask(self, *args: str, settings: Settings | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """`flask --app wsgi backups ARGS` as an operator runs it."""
        return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "backups", *args], cwd=ROOT,
                              env={**os.environ, **self.env(settings)}, capture_output=True, text=True,
                              timeout=timeout)

    def sql(self, statement: str, **params):
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement), params)
                return result.all() if result.returns_rows else None
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def source(settings):
    """The cluster, migrated to the app's schema, archiving every WAL segment to an encrypted repository."""
    from web.cli import alembic_config, ensure_database
    from alembic import command

    base = Path(tempfile.mkdtemp(prefix="shop-bk-"))
    base.chmod(0o755)  # the postgres user must reach its folders inside
    port = free_port()
    backup_settings = replace(
        settings, BACKUP_DATABASE_URL=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/shop",
        BACKUP_PG_DATA=str(base / "data"), BACKUP_PG_SOCKET_DIR=str(base / "sock"), BACKUP_RUN_AS="postgres",
        BACKUP_REPO_PATH=str(base / "repo"), BACKUP_WORK_DIR=str(base / "work"),
        BACKUP_DRILL_DIR=str(base / "drill"), BACKUP_DRILL_PORT=free_port(),
        BACKUP_CIPHER_PASS="test-backup-passphrase", BACKUP_IO_TIMEOUT=5)
    tool = make_tool(backup_settings)
    cluster = ScratchCluster(base / "data", port, "", run_as="postgres", socket_dir=str(base / "sock"))
    cluster.initdb("wal_level = replica", "archive_mode = on", f"archive_command = '{tool.archive_command()}'",
                   "archive_timeout = 60", "fsync = off", "synchronous_commit = off")
    try:
        cluster.start()
        ensure_database(backup_settings.BACKUP_DATABASE_URL)
        tool.stanza_create()  # before any WAL is pushed: a failed push is retried only a minute later
        command.upgrade(alembic_config(backup_settings.BACKUP_DATABASE_URL), "head")
        yield Source(cluster, backup_settings, base)
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
