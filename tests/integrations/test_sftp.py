"""What only SFTP has: the host key checked against known_hosts (the interface is tested in test_storage)."""

import subprocess

import pytest

from integrations.errors import PermanentError
from integrations.storage.sftp import SFTPStorage
from tests.imports.conftest import sshd_twin  # noqa: F401  (the fixture)


def test_an_unknown_host_key_is_refused(sshd_twin, tmp_path):  # noqa: F811
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd_twin.port} {kind} {key}\n")
    storage = SFTPStorage("127.0.0.1", sshd_twin.port, sshd_twin.user, "/", str(other),
                          key_filename=str(sshd_twin.key_file))
    with pytest.raises(PermanentError, match="(?i)host key|known_hosts"):
        list(storage.list())
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(PermanentError):
        list(SFTPStorage("127.0.0.1", sshd_twin.port, sshd_twin.user, "/", str(empty),
                         key_filename=str(sshd_twin.key_file)).list())
