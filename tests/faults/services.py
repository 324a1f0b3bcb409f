"""Services a fault test owns and may stop: a scratch PostgreSQL cluster and a private RabbitMQ node.

Both run on free loopback ports with their data in a scratch folder; the
machine's shared PostgreSQL and RabbitMQ are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as(user: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a shell command as `user` (the servers refuse to run as root)."""
    if os.geteuid() != 0:
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout)
    return subprocess.run(["su", user, "-s", "/bin/sh", "-c", command], capture_output=True, text=True,
                          timeout=timeout)


def _scratch_folder(owner: str, prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, owner, owner)
    return folder


class ScratchPostgres:
    """A PostgreSQL cluster of our own (initdb + pg_ctl) that a test may stop, start and restart."""

    def __init__(self):
        self.bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                     check=True).stdout.strip()
        self.port = free_port()
        self.folder = _scratch_folder("postgres", "shop-pg-")
        self.data = self.folder / "data"

    @property
    def server_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}"

    def _ctl(self, *args: str) -> None:
        result = _as("postgres", f"{self.bindir}/pg_ctl -D {self.data} -l {self.folder}/log -w -t 60 "
                                 + " ".join(args))
        if result.returncode:
            raise RuntimeError(f"pg_ctl {args}: {result.stdout}{result.stderr}")

    def start(self) -> ScratchPostgres:
        if not self.data.exists():
            result = _as("postgres", f"{self.bindir}/initdb -D {self.data} -A trust -U postgres --no-sync -E UTF8")
            if result.returncode:
                raise RuntimeError(f"initdb: {result.stderr}")
        self._ctl("-o", f"'-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off'", "start")
        return self

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def destroy(self) -> None:
        _as("postgres", f"{self.bindir}/pg_ctl -D {self.data} -m immediate stop")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRabbit:
    """A RabbitMQ node of our own (its node name, ports and data folder) that a test may stop and start.

    `pause()`/`resume()` stop and start the broker application inside the
    node (what clients see as the broker going away), which is faster than
    restarting the Erlang VM.
    """

    def __init__(self, name: str):
        self.node = f"{name}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.folder = _scratch_folder("rabbitmq", "shop-rabbit-")
        (self.folder / "plugins").write_text("[].\n")
        # Its own listener: the machine's rabbitmq.conf names the shared broker's port.
        (self.folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        if os.geteuid() == 0:
            for name in ("plugins", "rabbitmq.conf"):
                shutil.chown(self.folder / name, "rabbitmq", "rabbitmq")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def ctl(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(["rabbitmqctl", "-q", "-n", self.node, *args], capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"rabbitmqctl {args}: {result.stdout}{result.stderr}")
        return result.stdout

    def start(self) -> PrivateRabbit:
        env = (f"RABBITMQ_NODENAME={self.node} RABBITMQ_NODE_PORT={self.port} "
               f"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT={self.dist_port} "
               f"RABBITMQ_MNESIA_BASE={self.folder}/mnesia RABBITMQ_LOG_BASE={self.folder}/log "
               f"RABBITMQ_ENABLED_PLUGINS_FILE={self.folder}/plugins "
               f"RABBITMQ_CONFIG_FILE={self.folder}/rabbitmq.conf")
        result = _as("rabbitmq", f"{env} rabbitmq-server -detached")
        if result.returncode:
            raise RuntimeError(f"rabbitmq-server: {result.stderr}")
        wait_for(self._registered, timeout=60, message="the private RabbitMQ node to run")
        wait_for(self._accepts, timeout=120, interval=0.5, message="the private broker to accept connections")
        return self

    def _registered(self) -> bool:
        names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10).stdout
        return f"name {self.node.split('@')[0]} at port" in names

    def pause(self) -> None:
        self.ctl("stop_app")

    def resume(self) -> None:
        self.ctl("start_app")
        wait_for(self._accepts, timeout=60, message="the private broker to accept connections")

    def _accepts(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.ctl("stop", timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)
