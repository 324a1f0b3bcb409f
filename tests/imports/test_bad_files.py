"""Hostile and broken files: each ends with a clear status and report, nothing half-written."""

import os
from dataclasses import replace

import pytest

from imports import pipeline
from tests.imports.conftest import DATA, drop, get_job, import_file, only_job, rows, run_steps, scalar

BAD = DATA / "bad"

# file → (status, text the job message or the reject report must hold, rows imported)
CASES = {
    "empty.csv": ("failed", "the file is empty", 0),
    "header_only.csv": ("failed", "no rows", 0),
    "wrong_delimiter.csv": ("failed", "required columns missing", 0),
    "missing_columns.csv": ("failed", "required columns missing: price", 0),
    "extra_columns.csv": ("partially_failed", "expected 11 fields, saw 13", 2),
    "duplicate_skus.csv": ("partially_failed", "duplicate SKU in this file (first on row 2)", 2),
    "invalid_utf8.csv": ("failed", "not valid UTF-8", 0),
    "binary_garbage.csv": ("failed", "binary data", 0),
    "utf16.csv": ("failed", "UTF-16 is not supported", 0),
    "truncated.xml": ("failed", "not well-formed", 0),
    "xxe.xml": ("failed", "DTD or entities, which are refused", 0),
    "billion_laughs.xml": ("failed", "DTD or entities, which are refused", 0),
    "external_dtd.xml": ("failed", "DTD or entities, which are refused", 0),
    "wrong_root.xml": ("failed", "root element must be <catalog>", 0),
    "not_array.json": ("failed", "items must be in a top-level array or one object per line", 0),
    "scalar.json": ("failed", "JSON must be an array of objects or one object per line", 0),
    "truncated.json": ("failed", "invalid JSON", 0),
    "negative_price.csv": ("partially_failed", "price must not be negative", 1),
    "unknown_currency.csv": ("partially_failed", "unknown currency", 1),
    "category_cycle.csv": ("partially_failed", "repeats 'Home' (a cycle)", 1),
    "formula_injection.csv": ("partially_failed", "3,price,'=1+1,price must be", 1),
    "wrong_types.csv": ("failed", "stock must be a whole number", 0),
    "bad_image_url.csv": ("failed", "image URLs must be http(s)", 0),
}


def report_text(inbox, name: str) -> str:
    path = inbox / "errors" / f"{name}.csv"
    return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file(name, database, local_settings, inbox):
    status, expected, imported = CASES[name]
    job = import_file(database, local_settings, inbox, name, BAD / name)
    report = report_text(inbox, name)
    assert (job.status, job.rows_imported) == (status, imported), job.message
    assert expected in job.message + report
    assert report.startswith("record,column,value,message")
    folder = "failed" if status == "failed" else "processed"
    assert (inbox / folder / name).exists() and not (inbox / name).exists()
    assert not list((inbox / "processing").iterdir())
    # nothing half-written: exactly the valid rows are in the catalog, and staging is empty
    assert scalar(database, "SELECT count(*) FROM product_variants") == imported
    assert scalar(database, "SELECT count(*) FROM import_staging") == 0
    assert rows(database, "SELECT template FROM email_messages") == [("import_report",)]


def test_the_report_names_row_column_value_and_message(database, local_settings, inbox):
    import_file(database, local_settings, inbox, "negative_price.csv", BAD / "negative_price.csv")
    assert report_text(inbox, "negative_price.csv").splitlines() == [
        "record,column,value,message", "2,price,'-5.00,price must not be negative"]


def test_a_single_100_mb_line_is_refused_unread(database, local_settings, inbox, tmp_path):
    big = tmp_path / "long.csv"
    with big.open("wb") as out:
        out.write(b"sku,product_handle,product_name,price,currency,stock\nA-1,a,")
        out.write(b"x" * (100 * 1024 * 1024))
        out.write(b",1.00,EUR,1\n")
    job = import_file(database, local_settings, inbox, "long.csv", big)
    assert job.status == "failed" and "a line longer than 1048576 bytes" in job.message


def test_a_2_gb_sparse_file_is_refused_by_size(database, local_settings, inbox, tmp_path):
    sparse = inbox / "huge.csv"
    with sparse.open("wb") as out:
        out.truncate(2 * 1024 ** 3)
    os.utime(sparse, (0, 0))
    assert pipeline.discover(database, local_settings) == 1
    job = run_steps(database, local_settings, only_job(database).id)
    assert job.status == "failed" and "more than the 268435456 allowed" in job.message
    assert (inbox / "failed" / "huge.csv").stat().st_size == 2 * 1024 ** 3


def test_a_file_removed_mid_import_is_merged_from_what_the_scan_staged(database, local_settings, inbox):
    drop(inbox, "catalog.csv", DATA / "catalog.csv")
    pipeline.discover(database, local_settings)
    job = only_job(database)
    pipeline.scan(database, local_settings, str(job.id))
    (inbox / "processing" / "catalog.csv").unlink()
    assert pipeline.load(database, local_settings, str(job.id)) == "finish_import"
    pipeline.finish(database, local_settings, str(job.id))
    job = get_job(database, job.id)
    assert (job.status, job.rows_imported) == ("succeeded", 5)
    assert scalar(database, "SELECT count(*) FROM product_variants") == 5


def test_a_file_removed_mid_import_when_its_staged_rows_are_lost(database, local_settings, inbox):
    drop(inbox, "catalog.csv", DATA / "catalog.csv")
    pipeline.discover(database, local_settings)
    job = only_job(database)
    pipeline.scan(database, local_settings, str(job.id))
    assert get_job(database, job.id).status == "running"
    (inbox / "processing" / "catalog.csv").unlink()
    with database.engine.begin() as conn:  # as a PostgreSQL crash empties an UNLOGGED table
        conn.exec_driver_sql("TRUNCATE import_staging")
    pipeline.load(database, local_settings, str(job.id))
    pipeline.finish(database, local_settings, str(job.id))
    job = get_job(database, job.id)
    assert job.status == "failed" and "removed while it was being imported" in job.message
    assert "removed while" in report_text(inbox, "catalog.csv")
    assert scalar(database, "SELECT count(*) FROM product_variants") == 0


def test_all_or_nothing_refuses_the_whole_file(database, local_settings, inbox):
    strict = replace(local_settings, IMPORT_INBOXES=f"{inbox}?policy=all_or_nothing")
    job = import_file(database, strict, inbox, "negative_price.csv", BAD / "negative_price.csv")
    assert job.status == "failed" and "the whole file was refused" in job.message
    assert scalar(database, "SELECT count(*) FROM product_variants") == 0
    assert "price must not be negative" in report_text(inbox, "negative_price.csv")


def test_stock_below_what_orders_hold_is_rejected(database, local_settings, inbox):
    import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    with database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE product_variants SET reserved = 10 WHERE sku = 'KN-CHEF-20'")
    content = (DATA / "catalog.csv").read_bytes().replace(b"49.90,EUR,12", b"49.90,EUR,3")
    job = import_file(database, local_settings, inbox, "lower.csv", content)
    assert (job.status, job.rows_imported, job.rows_failed) == ("partially_failed", 4, 1)
    assert "stock 3 is below the 10 units open orders hold" in report_text(inbox, "lower.csv")
    assert scalar(database, "SELECT stock FROM product_variants WHERE sku = 'KN-CHEF-20'") == 12


def test_a_nul_byte_deep_in_a_text_file_is_refused(database, local_settings, inbox):
    content = (DATA / "catalog.csv").read_bytes() + b"A-9,a,A,,Home,1.00,EUR,1,,\n" * 5000 + b"A-\x00,a,A,,,1,EUR,1,,\n"
    job = import_file(database, local_settings, inbox, "nul.csv", content)
    assert job.status == "failed" and "binary data (a NUL byte" in job.message
    assert scalar(database, "SELECT count(*) FROM product_variants") == 0
