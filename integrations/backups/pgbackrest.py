"""pgBackRest, run as a command: its configuration written from our settings, its JSON read back.

pgBackRest must run as the OS user that owns the cluster (it reads the data
folder, and PostgreSQL's archive_command runs it as that user to push WAL),
so every command goes through `runuser` when `run_as` names another user.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

from integrations.backups.base import (Backup, BackupError, ClusterConfig, RepoConfig, RepoDamaged, RepoInfo,
                                       RepoUnreachable)

# pgBackRest's own words for a repository it cannot reach (a host down, a bucket's endpoint away).
UNREACHABLE = re.compile(r"HostConnectError|unable to connect|connection refused|timeout|timed out|"
                         r"unable to get address|no route to host|network is unreachable|ServiceError",
                         re.IGNORECASE)
DAMAGED = re.compile(r"status: error|(missing|checksum invalid|size invalid|other): [1-9]")
LOCK_HELD = 50  # exit code of "unable to acquire lock": another command holds the stanza
Progress = Callable[[str], None]


class PgBackRest:
    """One stanza: a cluster and its encrypted repository."""

    def __init__(self, repo: RepoConfig, cluster: ClusterConfig, executable: str = "pgbackrest"):
        self.repo = repo
        self.cluster = cluster
        self.executable = executable
        self.work_dir = Path(cluster.work_dir)
        self.config_path = self.work_dir / "pgbackrest.conf"

    # --- configuration ---------------------------------------------------

    def config_text(self) -> str:
        """The pgbackrest.conf these settings make (it holds the cipher passphrase: keep it private)."""
        repo, cluster = self.repo, self.cluster
        lines = ["[global]", f"repo1-type={repo.kind}", f"repo1-path={repo.path}",
                 "repo1-cipher-type=aes-256-cbc", f"repo1-cipher-pass={repo.cipher_pass}",
                 f"repo1-retention-full={repo.retention_full}", f"repo1-retention-diff={repo.retention_diff}",
                 f"repo1-retention-archive={repo.retention_archive}", "repo1-retention-archive-type=full",
                 f"lock-path={self.work_dir / 'lock'}", f"log-path={self.work_dir / 'log'}",
                 f"spool-path={self.work_dir / 'spool'}", "log-level-file=info", "log-level-console=warn",
                 # Bundles: small files share one repository object (a few requests per backup on S3).
                 "start-fast=y", "repo1-bundle=y", "compress-type=lz4", f"process-max={repo.process_max}",
                 "archive-timeout=60", f"io-timeout={repo.io_timeout}"]
        if repo.kind == "s3":
            host, _, port = repo.s3_endpoint.partition(":")
            lines += [f"repo1-s3-bucket={repo.s3_bucket}", f"repo1-s3-endpoint={host}",
                      f"repo1-s3-region={repo.s3_region}", "repo1-s3-uri-style=path"]
            # No key: the instance's role (pgBackRest's `auto` key type), as boto3's own chain would.
            lines += ([f"repo1-s3-key={repo.s3_key}", f"repo1-s3-key-secret={repo.s3_secret}"] if repo.s3_key
                      else ["repo1-s3-key-type=auto"])
            if port:
                lines.append(f"repo1-storage-port={port}")
            if repo.s3_ca_file:
                lines.append(f"repo1-storage-ca-file={repo.s3_ca_file}")
            if not repo.s3_verify_tls:
                lines.append("repo1-storage-verify-tls=n")
        lines += ["", f"[{repo.stanza}]", f"pg1-path={cluster.data_dir}", f"pg1-port={cluster.port}",
                  f"pg1-socket-path={cluster.socket_dir}", f"pg1-user={cluster.user}",
                  f"pg1-database={cluster.database}"]
        return "\n".join(lines) + "\n"

    def write_config(self) -> Path:
        """Write the configuration and the folders pgBackRest needs, owned by the user it runs as."""
        for sub in ("", "lock", "log", "spool"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.repo.kind == "posix":
            Path(self.repo.path).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.config_text())
        owned = [self.work_dir, *(self.work_dir / sub for sub in ("lock", "log", "spool")), self.config_path]
        if self.repo.kind == "posix":
            owned.append(Path(self.repo.path))
        for path in owned:
            self._give(path)
        return self.config_path

    def archive_command(self) -> str:
        """The archive_command PostgreSQL runs for every WAL segment."""
        return f"{self.executable} --config={self.config_path} --stanza={self.repo.stanza} archive-push %p"

    def restore_command(self) -> str:
        return f"{self.executable} --config={self.config_path} --stanza={self.repo.stanza} archive-get %f \"%p\""

    # --- commands --------------------------------------------------------

    def stanza_create(self) -> None:
        """Create the stanza in the repository (does nothing when it exists and matches)."""
        self.run("stanza-create")

    def backup(self, kind: str = "full", progress: Progress | None = None) -> Backup:
        """Take a full, diff or incr backup (expiring old ones per retention); return it."""
        if kind not in ("full", "diff", "incr"):
            raise ValueError(f"backup type must be full, diff or incr, not {kind!r}")
        self.run("backup", f"--type={kind}", progress=progress)
        newest = self.info().newest
        if newest is None:
            raise BackupError("pgBackRest reported success but the repository lists no backup")
        return newest

    def check(self) -> None:
        """pgBackRest's own check: the configuration is valid and a WAL segment reaches the archive."""
        self.run("check")

    def verify(self, progress: Progress | None = None) -> str:
        """Read back every backup and WAL file of the repository and check it; the report, or BackupError."""
        out = self.run("verify", "--output=text", "--verbose", progress=progress)
        if DAMAGED.search(out):
            raise RepoDamaged("verify found damaged files:\n" + out.strip())
        return out

    def info(self) -> RepoInfo:
        """The backups and WAL range the repository holds."""
        raw = self.run("info", "--output=json") or "[]"
        try:
            data = json.loads(raw, strict=False)  # a wrong key leaves undecrypted bytes in the messages
        except ValueError:
            raise BackupError(f"pgBackRest info is not JSON: {raw[:2000]}") from None
        stanza = next((s for s in data if s.get("name") == self.repo.stanza), None)
        if stanza is None:
            return RepoInfo(status="missing stanza", backups=[])
        status = stanza.get("status", {})
        if status.get("code") not in (0, 2):  # 2: no backups yet, which is fine to report
            details = [r.get("status", {}).get("message", "") for r in stanza.get("repo", [])]
            raise _classify("; ".join([status.get("message", "unknown repository status"), *filter(None, details)]),
                            status.get("code", 1))
        archive = (stanza.get("archive") or [{}])[-1]
        return RepoInfo(status=status.get("message", "ok"), backups=[_backup(b) for b in stanza.get("backup", [])],
                        archive_min=archive.get("min"), archive_max=archive.get("max"))

    def restore(self, target_dir: Path, *, to_time: str | None = None, to_name: str | None = None,
                force: bool = False, progress: Progress | None = None) -> None:
        """Restore into `target_dir` up to a time or a named restore point; neither: all the WAL archived."""
        options = [f"--pg1-path={target_dir}", "--archive-mode=off"]
        if to_time:
            options += ["--type=time", f"--target={to_time}", "--target-action=promote"]
        elif to_name:
            options += ["--type=name", f"--target={to_name}", "--target-action=promote"]
        if force:
            options += ["--delta", "--force"]
        self.run("restore", *options, progress=progress)

    def run(self, command: str, *options: str, progress: Progress | None = None) -> str:
        """Run one pgBackRest command; its stdout, or BackupError / RepoUnreachable with its own message."""
        argv = [*self._prefix(), self.executable, f"--config={self.config_path}", f"--stanza={self.repo.stanza}",
                *(["--log-level-console=info"] if progress else []), *options, command]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", cwd="/", env={**os.environ, "LC_ALL": "C"})
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if progress:
                progress(line.rstrip())
        code = proc.wait()
        out = "".join(lines)
        if code:
            raise _classify(out.strip() or f"pgbackrest {command} exited with {code}", code)
        return out

    # --- helpers ---------------------------------------------------------

    def _prefix(self) -> list[str]:
        user = self.cluster.run_as
        if user and user != getpass.getuser():
            return ["runuser", "-u", user, "--"]
        return []

    def _give(self, path: Path) -> None:
        user = self.cluster.run_as
        if user and user != getpass.getuser() and os.geteuid() == 0:
            shutil.chown(path, user, user)


class ScratchCluster:
    """A PostgreSQL cluster in a folder of ours: made by initdb or a restore, started and stopped by pg_ctl."""

    def __init__(self, data_dir: Path, port: int, bin_dir: str, run_as: str = "", socket_dir: str = ""):
        self.data_dir = Path(data_dir)
        self.port = port
        self.bin_dir = bin_dir or _pg_bindir()
        self.run_as = run_as
        self.socket_dir = socket_dir or str(self.data_dir)

    def prepare(self) -> None:
        """Make the data and socket folders, owned by the cluster's user, private as PostgreSQL wants."""
        for folder in {self.data_dir, Path(self.socket_dir)}:
            folder.mkdir(parents=True, exist_ok=True)
            self._own(folder)
        self.data_dir.chmod(0o700)

    def initdb(self, *settings: str) -> None:
        """A new cluster with data checksums; `settings` are extra postgresql.conf lines."""
        self.prepare()
        self._pg("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "--data-checksums",
                 "--no-sync", "-E", "UTF8", "--locale=C")
        self.configure(*settings)

    def configure(self, *settings: str) -> None:
        """Append lines to postgresql.auto.conf: ours win over what a restore copied from the source."""
        lines = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                 f"unix_socket_directories = '{self.socket_dir}'", *settings]
        with open(self.data_dir / "postgresql.auto.conf", "a") as out:
            out.write("\n" + "\n".join(lines) + "\n")

    def start(self, timeout: int = 600) -> None:
        self._pg("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"), "-w",
                 "-t", str(timeout), "start")

    def wait_promoted(self, timeout: float = 600.0) -> None:
        """Wait until recovery has ended and the server accepts writes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                      connect_timeout=2) as conn, conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery()")
                    if not cur.fetchone()[0]:
                        return
            except psycopg2.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise BackupError(f"the restored server did not finish recovery in {timeout:.0f}s:\n"
                                  f"{self.log()[-2000:]}")
            time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as and self.run_as != getpass.getuser() else []
        proc = subprocess.run([*prefix, str(Path(self.bin_dir) / program), *args], capture_output=True, text=True,
                              cwd="/")
        if check and proc.returncode:
            raise BackupError(f"{program} failed: {(proc.stderr or proc.stdout).strip()}\n{self.log()[-2000:]}",
                              code=proc.returncode)
        return proc

    def _own(self, path: Path) -> None:
        if self.run_as and self.run_as != getpass.getuser() and os.geteuid() == 0:
            shutil.chown(path, self.run_as, self.run_as)


def _pg_bindir() -> str:
    return subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()


def _backup(raw: dict) -> Backup:
    stamp = raw["timestamp"]
    return Backup(label=raw["label"], type=raw["type"],
                  started_at=datetime.fromtimestamp(stamp["start"], UTC),
                  stopped_at=datetime.fromtimestamp(stamp["stop"], UTC),
                  size=raw["info"]["size"], repo_size=raw["info"]["repository"]["delta"],
                  wal_start=raw["archive"]["start"], wal_stop=raw["archive"]["stop"],
                  error=bool(raw.get("error")))


def _classify(message: str, code: int) -> BackupError | RepoUnreachable:
    if UNREACHABLE.search(message):
        return RepoUnreachable(message, code)
    return BackupError(message, code)
