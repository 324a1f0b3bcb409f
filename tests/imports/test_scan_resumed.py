"""The scan checks a file chunk by chunk, each recorded in its own transaction: cut into slices (a continuation
after IMPORT_TASK_SECONDS, or a worker killed), it counts, numbers and reports rows exactly as one pass does."""

from dataclasses import replace

import pandas as pd

from imports import pipeline
from imports.feed import RowError
from tests.imports.conftest import drop, get_job, rows, scalar

# Row numbers count records (the header is row 1); a quoted cell holding a newline, a line with too many
# fields, a blank line, bad cells and SKUs repeated in later chunks (found only through the file-wide
# register) are spread over chunks.
FEED = (
    "sku,product_handle,product_name,description,category_path,price,currency,stock,image_urls,attributes\n"
    "A-1,a,Alpha,,Home > Kitchen,1.00,EUR,1,,\n"
    'A-2,a,Alpha,"two\nlines",Home,2.00,EUR,2,,\n'
    "A-3,b,Beta,,Home,-3,EUR,3,,\n"
    "A-1,c,Gamma,,Home,4.00,EUR,4,,\n"
    "A-5,c,Gamma,,Home,5.00,EUR,5,,,extra\n"
    "\n"
    "A-6,d,Delta,,Home,6.00,XXX,6,,\n"
    "A-2,d,Delta,,Home,7.00,EUR,7,,\n"
    "A-8,e,Epsilon,,Home,8.00,EUR,8,,\n"
    "A-9,e,Epsilon,,Home,9.00,EUR,,,\n"
    "A-8,f,Zeta,,Home,10.00,EUR,10,,\n"
)


def _scan_job(database, settings, inbox, name: str, content: str):
    drop(inbox, name, content.encode())
    assert pipeline.discover(database, settings) == 1
    [(job_id,)] = rows(database, "SELECT id FROM import_jobs WHERE source_key = :k", k=name)
    return job_id


def _outcome(database, job_id):
    job = get_job(database, job_id)
    errors = rows(database, 'SELECT row_no, "column", message FROM import_errors WHERE job_id = :j '
                            'ORDER BY row_no, "column", message', j=job_id)
    return (job.status, job.rows_total, job.rows_failed, job.chunks_total, job.checksum, job.size), errors


def test_a_scan_in_slices_counts_and_reports_as_one_pass(database, local_settings, inbox):
    settings = replace(local_settings, IMPORT_CHUNK_ROWS=2)
    whole = _scan_job(database, settings, inbox, "whole.csv", FEED)
    assert pipeline.scan(database, settings, str(whole)) == "scanned"

    sliced_settings = replace(settings, IMPORT_TASK_SECONDS=0)  # one chunk per task, then a continuation
    sliced = _scan_job(database, sliced_settings, inbox, "sliced.csv", FEED.replace("sku,", "SKU,", 1))
    steps = [pipeline.scan(database, sliced_settings, str(sliced)) for _ in range(8)]
    assert steps == ["scan_file"] * 4 + ["scanned"] + ["already scanned"] * 3
    assert scalar(database, "SELECT count(*) FROM outbox WHERE task = 'tasks.imports.scan_file' "
                            "AND kwargs->>'job_id' = :j", j=str(sliced)) == 1 + 4  # discovery's, then the continuations

    (status, total, failed, chunks, _, _), errors = _outcome(database, whole)
    (status2, total2, failed2, chunks2, _, _), errors2 = _outcome(database, sliced)
    assert (status, total, failed, chunks) == (status2, total2, failed2, chunks2) == ("running", 10, 7, 5)
    assert errors == errors2
    assert [(row, column) for row, column, _ in errors] == [
        (4, "price"), (5, "sku"), (6, ""), (8, "currency"), (9, "sku"), (11, "stock"), (12, "sku")]
    assert "first on row 2" in errors[1][2] and "first on row 3" in errors[4][2] and "first on row 10" in errors[6][2]


def test_a_chunk_recorded_twice_counts_once(database, local_settings, inbox):
    job_id = _scan_job(database, local_settings, inbox, "twice.csv", FEED)
    error = RowError(4, "price", "-3", "price must not be negative")
    valid = pd.DataFrame({"row_no": [2, 3], "sku": ["A-1", "A-2"], "product_handle": "a", "product_name": "Alpha",
                          "description": "", "category_path": "Home", "price": "1.00", "currency": "EUR",
                          "stock": "1", "image_urls": "", "attributes_json": ""})
    for _ in range(2):  # the same chunk checked again by a redelivered message
        assert pipeline._record_scanned(database, job_id, 0, 3, [error], valid)
    assert rows(database, "SELECT chunk, rows, rows_failed FROM import_scan_chunks WHERE job_id = :j",
                j=job_id) == [(0, 3, 1)]
    assert scalar(database, "SELECT count(*) FROM import_errors WHERE job_id = :j", j=job_id) == 1
    assert scalar(database, "SELECT count(*) FROM import_staging WHERE job_id = :j", j=job_id) == 2  # staged once
    # the rest of the scan goes on from chunk 1 and counts chunk 0 as recorded
    assert pipeline.scan(database, local_settings, str(job_id)) == "scanned"
    assert scalar(database, "SELECT chunks_total FROM import_jobs WHERE id = :j", j=job_id) == 4  # 10 records, 3 each


def test_a_file_refused_midway_keeps_no_row_errors(database, local_settings, inbox):
    settings = replace(local_settings, IMPORT_CHUNK_ROWS=2, IMPORT_TASK_SECONDS=0)
    broken = FEED + 'Z-1,z,"unterminated,Home,1.00,EUR,1,,\n' + "x" * 70_000 + "\n"
    job_id = _scan_job(database, settings, inbox, "broken.csv", broken)
    assert [pipeline.scan(database, settings, str(job_id)) for _ in range(2)] == ["scan_file"] * 2
    assert scalar(database, "SELECT count(*) FROM import_errors WHERE job_id = :j", j=job_id) == 2
    for _ in range(10):
        if pipeline.scan(database, settings, str(job_id)) != "scan_file":
            break
    job = get_job(database, job_id)
    assert job.status == "failed" and job.message
    assert scalar(database, "SELECT count(*) FROM import_errors WHERE job_id = :j", j=job_id) == 0
