"""The scan stages each chunk's checked rows in import_staging; the load merges them in SQL, and reads the file
again only for chunks whose staged rows PostgreSQL lost."""

from __future__ import annotations

from dataclasses import replace

import pytest

from imports import pipeline
from integrations.errors import TransientError
from tests.imports.conftest import drop, get_job, import_file, only_job, rows, run_steps, scalar

HEADER = "sku,product_handle,product_name,description,category_path,price,currency,stock,image_urls,attributes"
# Chunks of 3 rows (local_settings). Product `shared` has a row in every chunk, each naming it anew; chunk 1
# holds a row validation rejects (negative price), chunk 2 a SKU repeated from chunk 0.
FEED = "\n".join([
    HEADER,
    'S-0,shared,"Shared, first",Described first,Home > A,1.00,eur,1,,size=1',
    "A-1,alpha,Alpha,,Home > A,2.00,EUR,2,,",
    "A-2,alpha,Alpha,,Home > A,3.00,EUR,3,,",
    'S-1,shared,"Shared ""second""","Two\nlines",Home > B,4.00,EUR,4,,',
    "B-1,beta,Beta,,Home > B,-5,EUR,5,,",
    "B-2,beta,Beta,,Home > B,6.00,EUR,6,,",
    "S-2,shared,Shared last,,,7.00,EUR,7,https://img.example.com/s.png,",
    "A-1,gamma,Gamma,,Home,8.00,EUR,8,,",
    "C-1,gamma,Gamma,\"Tab\there, \\N and \\\",Home,9.00,EUR,9,,",  # what COPY's text format escapes
]) + "\n"
STAGED_PER_CHUNK = [(0, 3), (1, 2), (2, 2)]


def scan(database, settings, inbox, content: str = FEED, name: str = "feed.csv") -> str:
    drop(inbox, name, content.encode())
    assert pipeline.discover(database, settings) == 1
    job_id = str(only_job(database).id)
    assert pipeline.scan(database, settings, job_id) == "scanned"
    return job_id


def staged(database, job_id: str) -> list[tuple]:
    return rows(database, "SELECT chunk, count(*) FROM import_staging WHERE job_id = :j GROUP BY chunk ORDER BY 1",
                j=job_id)


def catalog(database) -> list[tuple]:
    return rows(database, """
        SELECT p.handle, p.name, p.description, c.path, v.sku, v.price::text, v.currency, v.stock, v.attributes
        FROM products p JOIN product_variants v ON v.product_id = p.id LEFT JOIN categories c ON c.id = p.category_id
        ORDER BY v.sku""")


EXPECTED = [
    ("alpha", "Alpha", "", "Home > A", "A-1", "2.0000", "EUR", 2, {}),
    ("alpha", "Alpha", "", "Home > A", "A-2", "3.0000", "EUR", 3, {}),
    ("beta", "Beta", "", "Home > B", "B-2", "6.0000", "EUR", 6, {}),
    ("gamma", "Gamma", "Tab\there, \\N and \\", "Home", "C-1", "9.0000", "EUR", 9, {}),
    ("shared", "Shared last", "Two\nlines", "Home > B", "S-0", "1.0000", "EUR", 1, {"size": "1"}),
    ("shared", "Shared last", "Two\nlines", "Home > B", "S-1", "4.0000", "EUR", 4, {}),
    ("shared", "Shared last", "Two\nlines", "Home > B", "S-2", "7.0000", "EUR", 7, {}),
]


def test_the_scan_stages_each_chunks_valid_rows_normalised(database, local_settings, inbox):
    job_id = scan(database, local_settings, inbox)
    assert staged(database, job_id) == STAGED_PER_CHUNK
    assert rows(database, "SELECT row_no, sku, product_name, description, category_path, price::text, currency, "
                          "stock, image_urls, attributes FROM import_staging WHERE job_id = :j AND chunk = 0 "
                          "ORDER BY row_no", j=job_id)[0] == (
        2, "S-0", "Shared, first", "Described first", "Home > A", "1.0000", "EUR", 1, None, {"size": "1"})
    assert rows(database, "SELECT description FROM import_staging WHERE sku = 'S-1'") == [("Two\nlines",)]


def test_later_rows_win_across_chunks_merged_last_first_and_nothing_stays_staged(database, local_settings, inbox):
    job_id = scan(database, local_settings, inbox)
    (inbox / "processing" / "feed.csv").unlink()  # the merge reads staged rows only, never the file
    assert [pipeline.load(database, local_settings, job_id, part, 3) for part in (2, 1, 0)] == [
        "part merged", "part merged", "finish_import"]
    assert catalog(database) == EXPECTED
    assert staged(database, job_id) == []
    pipeline.finish(database, local_settings, job_id)
    job = get_job(database, job_id)
    assert (job.status, job.rows_total, job.rows_imported, job.rows_failed) == ("partially_failed", 9, 7, 2)


@pytest.mark.parametrize("lost", [[1], [0, 1, 2]])
def test_chunks_whose_staged_rows_are_lost_are_read_from_the_file(database, local_settings, inbox, lost):
    job_id = scan(database, local_settings, inbox)
    with database.engine.begin() as conn:  # what a PostgreSQL crash does to an UNLOGGED table, chunk by chunk
        conn.exec_driver_sql(f"DELETE FROM import_staging WHERE chunk IN ({', '.join(map(str, lost))})")
    job = run_steps(database, local_settings, job_id)
    assert (job.status, job.rows_imported, job.rows_failed) == ("partially_failed", 7, 2)  # rejected rows stay out
    assert catalog(database) == EXPECTED
    assert rows(database, "SELECT count(*), sum(rows_imported) FROM import_chunks") == [(3, 7)]
    assert staged(database, job_id) == []


def test_rows_lost_after_the_part_looked_make_the_chunk_retry_from_the_file(database, local_settings, inbox,
                                                                            monkeypatch):
    job_id = scan(database, local_settings, inbox)
    lost_chunks = pipeline._lost_chunks

    def lose_after_looking(session, job, chunks):
        found = lost_chunks(session, job, chunks)
        with database.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM import_staging WHERE chunk = 0")
        return found

    monkeypatch.setattr(pipeline, "_lost_chunks", lose_after_looking)
    with pytest.raises(TransientError, match="chunk 0: 0 rows staged, 3 expected"):
        pipeline.load(database, local_settings, job_id)
    assert scalar(database, "SELECT count(*) FROM import_chunks") == 0  # the claim rolled back with the chunk
    monkeypatch.setattr(pipeline, "_lost_chunks", lost_chunks)
    job = run_steps(database, local_settings, job_id)  # the retry finds chunk 0 lost and reads it
    assert (job.status, job.rows_imported) == ("partially_failed", 7)
    assert catalog(database) == EXPECTED


def test_an_all_or_nothing_refusal_leaves_no_row_staged_or_merged(database, local_settings, inbox):
    strict = replace(local_settings, IMPORT_INBOXES=f"{inbox}?policy=all_or_nothing")
    job = import_file(database, strict, inbox, "feed.csv", FEED.encode())
    assert job.status == "failed" and "the whole file was refused" in job.message
    assert scalar(database, "SELECT count(*) FROM import_staging") == 0
    assert scalar(database, "SELECT count(*) FROM product_variants") == 0


def test_a_file_refused_whole_after_some_chunks_leaves_none_staged(database, local_settings, inbox, monkeypatch):
    stage, staged_chunks = pipeline.stage, []
    monkeypatch.setattr(pipeline, "stage", lambda session, data: (staged_chunks.append(1), stage(session, data)))
    # UTF-8 decided by its first accent, then a byte that is not UTF-8 a few MB on, past the chunks read first.
    lines = [HEADER, "X-0,h-0,Caf\u00e9,,,1.00,EUR,1,,"] + [f"X-{n},h-{n},N,,,1.00,EUR,1,," for n in range(1, 100000)]
    broken = ("\n".join(lines) + "\n").encode() + b"X-x,x,\xff,,,1.00,EUR,1,,\n"
    job = import_file(database, replace(local_settings, IMPORT_CHUNK_ROWS=20000), inbox, "broken.csv", broken)
    assert job.status == "failed" and "not valid UTF-8" in job.message
    assert len(staged_chunks) >= 2  # chunks were staged before the file was refused
    assert scalar(database, "SELECT count(*) FROM import_staging") == 0
    assert scalar(database, "SELECT count(*) FROM product_variants") == 0


def test_a_job_failed_midway_leaves_none_staged(database, local_settings, inbox):
    job_id = scan(database, local_settings, inbox)
    assert pipeline.load(database, replace(local_settings, IMPORT_TASK_SECONDS=0), job_id, 0, 3) == "part merged"
    pipeline.fail(database, job_id, "internal error: a step failed for good")
    assert pipeline.load(database, local_settings, job_id, 1, 3) == "not running"  # nothing more merges
    pipeline.finish(database, local_settings, job_id)  # and the finish deletes what is left
    assert staged(database, job_id) == []
    assert get_job(database, job_id).status == "failed"
