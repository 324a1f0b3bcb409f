"""The object-store interface over SFTP, against a real OpenSSH server."""

import subprocess

import pytest

from integrations.errors import PermanentError
from integrations.storage import ObjectMissing
from integrations.storage.sftp import SFTPStorage
from tests.imports.conftest import sshd_twin  # noqa: F401  (the fixture)


@pytest.fixture
def store(sshd_twin, request):  # noqa: F811
    folder = sshd_twin.folder_for(request.node.name)
    storage = SFTPStorage("127.0.0.1", sshd_twin.port, sshd_twin.user, str(folder), str(sshd_twin.known_hosts),
                          key_filename=str(sshd_twin.key_file))
    yield storage
    storage.close()


def test_put_read_list_move_delete(store):
    store.put("a/one.txt", b"one")
    store.put("a/two.txt", b"two")
    store.put("b/three.txt", b"three")
    assert store.read("a/one.txt") == b"one"
    assert [(o.key, o.size) for o in store.list("a/")] == [("a/one.txt", 3), ("a/two.txt", 3)]
    store.move("a/two.txt", "done/two.txt")
    assert not store.exists("a/two.txt") and store.read("done/two.txt") == b"two"
    store.delete("a/one.txt")
    store.delete("a/one.txt")
    assert [o.key for o in store.list()] == ["b/three.txt", "done/two.txt"]
    with pytest.raises(ObjectMissing):
        store.read("nope.txt")
    with pytest.raises(ObjectMissing):
        store.move("nope.txt", "x.txt")


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
