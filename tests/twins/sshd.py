"""A real OpenSSH server for SFTP tests: Debian's sshd on a free loopback port, with its own
config, host key, user and client key. It must run as root (sshd's privilege separation)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import wait_for

SSHD = "/usr/sbin/sshd"
USER = "shopsftp"

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers {user}
StrictModes no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        # Another suite may be adding the same user at this moment: its success is ours.
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", USER], capture_output=True)
        # With UsePAM no, a user without a password hash counts as locked.
        subprocess.run(["usermod", "-p", "*", USER], check=True, capture_output=True)
        return pwd.getpwnam(USER)


class SSHDTwin:
    """sshd serving SFTP; `root` is a folder the SFTP user owns; `known_hosts` and `key_file` are for clients."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="shop-sshd-"))
        self.port = free_port()
        self.root = self.folder / "sftp"
        self.known_hosts = self.folder / "known_hosts"
        self.key_file = self.folder / "client_key"
        self.user = USER

    def start(self) -> SSHDTwin:
        if not os.path.exists(SSHD):
            raise RuntimeError("openssh-server is not installed (make install adds it)")
        account = _ensure_user()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run([*keygen, "-f", str(self.folder / "host_key")], check=True)
        subprocess.run([*keygen, "-f", str(self.key_file)], check=True)
        shutil.copyfile(f"{self.key_file}.pub", self.folder / "authorized_keys")
        host_key = (self.folder / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n")
        os.chmod(self.folder, 0o755)  # noqa: S103  (the SFTP user must reach its folder inside)
        self.root.mkdir()
        os.chown(self.root, account.pw_uid, account.pw_gid)
        config = self.folder / "sshd_config"
        config.write_text(CONFIG.format(port=self.port, folder=self.folder, user=USER))
        self.log = self.folder / "sshd.log"
        self.proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(self.log)], start_new_session=True)
        wait_for(self._listening, timeout=10, message="sshd to listen")
        return self

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {self.log.read_text() if self.log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def folder_for(self, name: str) -> Path:
        """A fresh folder under the SFTP root, owned by the SFTP user."""
        account = pwd.getpwnam(USER)
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, account.pw_uid, account.pw_gid)
        return path

    def url(self, folder: Path) -> str:
        return f"sftp://{USER}@127.0.0.1:{self.port}{folder}"

    def env(self) -> dict[str, str]:
        return {"IMPORT_SFTP_KNOWN_HOSTS": str(self.known_hosts), "IMPORT_SFTP_KEY_FILE": str(self.key_file)}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)
