"""The object-store interface against a local folder, a real S3-compatible server and a real OpenSSH server."""

import urllib.request

import pytest

from integrations.errors import PermanentError
from integrations.storage import ObjectMissing, make_storage
from integrations.storage.local import LocalStorage
from integrations.storage.s3 import S3Storage
from integrations.storage.sftp import SFTPStorage
from tests.imports.conftest import sshd_twin  # noqa: F401  (the fixture)


@pytest.fixture(params=["local", "s3", "sftp"])
def store(request, tmp_path, s3_twin):
    if request.param == "local":
        yield LocalStorage(tmp_path, "http://shop.test/media")
    elif request.param == "s3":
        yield S3Storage(s3_twin.client(), s3_twin.bucket("storage-test"), prefix="objects")
    else:
        sshd = request.getfixturevalue("sshd_twin")
        storage = SFTPStorage("127.0.0.1", sshd.port, sshd.user, str(sshd.folder_for(request.node.name)),
                              str(sshd.known_hosts), key_filename=str(sshd.key_file))
        yield storage
        storage.close()


def test_put_read_list_move_delete(store):
    store.put("a/one.txt", b"one", "text/plain")
    store.put("a/two.txt", b"two")
    store.put("b/three.txt", b"three")
    assert store.read("a/one.txt") == b"one"
    assert [(o.key, o.size) for o in store.list("a/")] == [("a/one.txt", 3), ("a/two.txt", 3)]
    store.move("a/two.txt", "done/two.txt")
    assert not store.exists("a/two.txt") and store.read("done/two.txt") == b"two"
    store.delete("a/one.txt")
    store.delete("a/one.txt")
    assert [o.key for o in store.list()] == ["b/three.txt", "done/two.txt"]


def test_streams_in_and_out(store, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 3_000_000)
    with source.open("rb") as stream:
        store.put("big.bin", stream)
    with store.open("big.bin") as stream:
        assert len(stream.read()) == 3_000_000


def test_missing_and_unsafe_keys(store):
    with pytest.raises(ObjectMissing):
        store.read("nope.txt")
    with pytest.raises(ObjectMissing):
        store.move("nope.txt", "x.txt")
    for key in ("../etc/passwd", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(PermanentError):
            store.put(key, b"x")


def test_s3_urls_are_presigned_and_fetchable(s3_twin):
    store = S3Storage(s3_twin.client(), s3_twin.bucket("url-test"))
    store.put("img.png", b"\x89PNG...", "image/png")
    url = store.url("img.png", expires=60)
    assert "Signature=" in url or "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (loopback)
        assert response.read() == b"\x89PNG..."


def test_make_storage_follows_settings(settings, s3_twin, tmp_path):
    from dataclasses import replace

    local = make_storage(replace(settings, STORAGE_LOCAL_DIR=str(tmp_path)))
    assert isinstance(local, LocalStorage) and local.url("x/y.png") == "/media/x/y.png"
    s3 = make_storage(replace(settings, **s3_twin.env(s3_twin.bucket("settings-test"))))
    s3.put("k", b"v")
    assert s3.read("k") == b"v"
