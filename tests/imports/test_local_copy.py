"""The local copy of a remote inbox's file: made in slices that resume, read by the scan and the load parts,
gone when the job ends; without it (another machine) the parts read the inbox as before."""

from __future__ import annotations

import io
import os
import tempfile
import time
from dataclasses import replace

import pytest

from imports import localcopy, pipeline
from tests.imports.conftest import DATA, drop, get_job, only_job, rows, run_steps


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


class Remote:
    """A store whose files are read as streams that cannot seek (as S3's), counting the bytes it serves."""

    def __init__(self, data: bytes):
        self.data, self.served = data, 0

    def open(self, key: str):
        remote = self

        class Stream(io.RawIOBase):
            def __init__(self):
                self.inner = io.BytesIO(remote.data)

            def readable(self):
                return True

            def read(self, size=-1):
                block = self.inner.read(size)
                remote.served += len(block)
                return block

        return Stream()


def test_a_copy_made_in_slices_resumes_where_it_stopped_and_is_whole(temp_dir):
    data = os.urandom(int(2.5 * localcopy.BLOCK))
    remote = Remote(data)
    slices = []
    while (path := localcopy.fetch(remote, "processing/a.csv", "job-1", limit=10 * localcopy.BLOCK,
                                   seconds=-1)) is None:
        slices.append(localcopy.path_of("job-1").with_suffix(".part").stat().st_size)
        assert len(slices) < 10
    assert slices == [localcopy.BLOCK, 2 * localcopy.BLOCK, len(data)]  # each slice kept what it wrote
    assert path.read_bytes() == data
    assert not path.with_suffix(".part").exists()
    with localcopy.open_copy("job-1", len(data)) as stream:
        assert stream.read() == data
    assert localcopy.open_copy("job-1", len(data) + 1) is None  # not the file the scan read
    assert localcopy.fetch(remote, "processing/a.csv", "job-1", 10 * localcopy.BLOCK, 0) == path  # done once
    localcopy.remove("job-1")
    assert localcopy.open_copy("job-1", None) is None and not list(temp_dir.rglob("*job-1*"))


def test_a_copy_stops_past_the_size_limit_and_old_copies_are_pruned(temp_dir):
    remote = Remote(b"x" * (3 * localcopy.BLOCK))
    path = localcopy.fetch(remote, "big.csv", "job-2", limit=localcopy.BLOCK // 2, seconds=60)
    assert path.stat().st_size == localcopy.BLOCK  # over the limit: the scan refuses it by its size
    fresh = localcopy.folder() / "job-3.part"
    fresh.write_bytes(b"y")
    old = time.time() - 3600
    os.utime(path, (old, old))
    assert localcopy.prune(60) == 1
    assert not path.exists() and fresh.exists()


def lose_staged_rows(database) -> None:
    with database.engine.begin() as conn:
        assert conn.exec_driver_sql("DELETE FROM import_staging").rowcount > 0


def test_the_scan_and_loads_read_the_local_copy_of_a_remote_file(database, local_settings, inbox, temp_dir,
                                                                    monkeypatch):
    monkeypatch.setattr(localcopy, "worth_copying", lambda storage: True)  # the local inbox as if it were SFTP
    settings = replace(local_settings, IMPORT_TASK_SECONDS=0)  # the copy and the checks in the smallest slices
    drop(inbox, "catalog.csv", DATA / "catalog.csv")
    assert pipeline.discover(database, settings) == 1
    job_id = only_job(database).id
    for _ in range(50):
        if pipeline.scan(database, settings, str(job_id)) != "scan_file":
            break
    assert get_job(database, job_id).status == "running"
    copy = localcopy.path_of(job_id)
    assert copy.read_bytes() == (DATA / "catalog.csv").read_bytes()
    # The file leaves the inbox and PostgreSQL loses the rows the scan staged (a crash empties the UNLOGGED
    # table): the parts still merge every row, from the copy.
    (inbox / "processing" / "catalog.csv").unlink()
    lose_staged_rows(database)
    job = run_steps(database, settings, job_id)
    assert (job.status, job.rows_total, job.rows_imported, job.rows_failed) == ("succeeded", 5, 5, 0)
    assert rows(database, "SELECT handle, name FROM products ORDER BY handle") == [
        ("chef-knife", "Chef's Knife"), ("mug", "Stoneware Mug"), ("tee", "Organic Tee")]
    assert not copy.exists() and not copy.with_suffix(".part").exists()  # the finish removed it


def test_without_the_copy_the_parts_read_the_inbox(database, local_settings, inbox, temp_dir, monkeypatch):
    monkeypatch.setattr(localcopy, "worth_copying", lambda storage: True)
    drop(inbox, "catalog.csv", DATA / "catalog.csv")
    pipeline.discover(database, local_settings)
    job_id = only_job(database).id
    assert pipeline.scan(database, local_settings, str(job_id)) == "scanned"
    localcopy.remove(job_id)  # the parts run on another machine
    lose_staged_rows(database)  # and must read the file
    job = run_steps(database, local_settings, job_id)
    assert (job.status, job.rows_imported) == ("succeeded", 5)


def test_a_second_writer_of_the_same_copy_waits_its_turn(temp_dir):
    import fcntl

    from integrations.errors import TransientError

    remote = Remote(b"z" * 100)
    localcopy.folder().mkdir(parents=True)
    with open(localcopy.path_of("job-4").with_suffix(".part"), "ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(TransientError):
            localcopy.fetch(remote, "a.csv", "job-4", limit=1000, seconds=60)
    assert remote.served == 0
    assert localcopy.fetch(remote, "a.csv", "job-4", limit=1000, seconds=60).read_bytes() == b"z" * 100
