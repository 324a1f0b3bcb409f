"""Hostile catalog files and exports: values the database refuses, encodings, limits, names, round trips."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest
from defusedxml.ElementTree import fromstring

from imports import exports, inboxes, pipeline
from models.users.permissions import SYSTEM
from models.imports.tables import ImportJob
from tests.helpers import bearer, make_user
from tests.imports.conftest import drop, get_job, import_file, rows, run_steps, scalar

HEADER = "sku,product_handle,product_name,description,category_path,price,currency,stock,image_urls,attributes\n"


def feed(*lines: str) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


def report(inbox, job: ImportJob) -> list[str]:
    [path] = list((inbox / "errors").glob("*.csv"))
    return path.read_text(encoding="utf-8").splitlines()


def row(sku: str, price: str = "1.00", stock: str = "1", name: str = "Thing", category: str = "Home") -> str:
    return f"{sku},h-{sku.lower()},{name},,{category},{price},EUR,{stock},,"


def test_digits_of_other_scripts_are_refused_by_validation_with_their_records(database, local_settings, inbox):
    content = feed(row("A-1"), row("A-2", price="１２.５０"), row("A-3", stock="٣"), row("A-4"), row("A-5"))
    job = import_file(database, local_settings, inbox, "digits.csv", content)
    assert (job.status, job.rows_total, job.rows_imported, job.rows_failed) == ("partially_failed", 5, 3, 2)
    assert report(inbox, job)[1:] == [
        "3,price,１２.５０,price must be a decimal number with a dot and at most 4 decimals",
        "4,stock,٣,stock must be a whole number"]


@pytest.fixture
def refusing_database(database):
    """The catalog refuses SKUs starting REFUSED, a stand-in for any value PostgreSQL turns down after validation."""
    with database.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE product_variants "
                             "ADD CONSTRAINT test_refused CHECK (left(sku, 7) <> 'REFUSED')")
    yield database
    with database.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE product_variants DROP CONSTRAINT test_refused")


def test_a_chunk_the_database_refuses_is_split_down_to_the_guilty_rows(refusing_database, local_settings, inbox):
    database = refusing_database
    skus = ["A-1", "A-2", "REFUSED-1", "A-3", "A-4", "A-5", "REFUSED-2", "A-6", "A-7"]  # chunks of 3 rows
    job = import_file(database, local_settings, inbox, "refused.csv", feed(*(row(sku) for sku in skus)))
    assert (job.status, job.rows_total, job.rows_imported, job.rows_failed) == ("partially_failed", 9, 7, 2)
    lines = report(inbox, job)
    assert [line.split(",")[0] for line in lines[1:]] == ["4", "8"]
    assert all("refused by the database" in line and "test_refused" in line for line in lines[1:])
    assert sorted(sku for (sku,) in rows(database, "SELECT sku FROM product_variants")) == sorted(
        sku for sku in skus if not sku.startswith("REFUSED"))
    assert scalar(database, "SELECT sum(rows_imported) FROM import_chunks") == 7


def test_latin1_decided_on_the_whole_file_not_its_first_64_kb(database, local_settings, inbox):
    plain = "".join(row(f"P-{n}") + "\n" for n in range(2000)).encode()
    assert len(plain) > 64 * 1024
    content = HEADER.encode() + plain + row("P-LAST", name="Caf\xe9").encode("latin-1") + b"\n"
    job = import_file(database, replace(local_settings, IMPORT_CHUNK_ROWS=500), inbox, "late.csv", content)
    assert (job.status, job.rows_imported) == ("succeeded", 2001), job.message
    assert scalar(database, "SELECT name FROM products WHERE handle = 'h-p-last'") == "Café"


def test_broken_utf8_after_utf8_text_is_still_refused(database, local_settings, inbox):
    content = feed(row("U-1", name="Café")) + row("U-2", name="Caf\xe9").encode("latin-1") + b"\n"
    job = import_file(database, local_settings, inbox, "mixed.csv", content)
    assert job.status == "failed" and "not valid UTF-8" in job.message


def test_a_100000_level_category_path_is_refused_by_its_length_before_any_other_work(database, local_settings, inbox):
    path = " > ".join(f"c{n}" for n in range(100_000))
    job = import_file(database, local_settings, inbox, "deep.csv", feed(row("D-1", category=path), row("D-2")))
    assert (job.status, job.rows_imported, job.rows_failed) == ("partially_failed", 1, 1)
    assert "category_path" in report(inbox, job)[1] and "longer than 2000" in report(inbox, job)[1]


def test_json_nested_10000_deep_is_refused_as_malformed(database, local_settings, inbox):
    content = b'[{"sku": ' + b"[" * 10_000 + b"]" * 10_000 + b"}]"
    job = import_file(database, local_settings, inbox, "deep.json", content)
    assert job.status == "failed" and "nested too deep" in job.message
    assert rows(database, "SELECT template FROM email_messages") == [("import_report",)]


def test_a_duplicated_column_is_refused_naming_it(database, local_settings, inbox):
    content = b"sku,product_handle,product_name,price,currency,stock,Price\nA-1,a,A,1.00,EUR,1,2.00\n"
    job = import_file(database, local_settings, inbox, "twice.csv", content)
    assert job.status == "failed" and "names the column price more than once" in job.message


@pytest.mark.parametrize("name, content", [
    ("twice.xml", b"<catalog><item><sku>X-1</sku><product_handle>x</product_handle><product_name>X</product_name>"
                  b"<price>1</price><price>2</price><currency>EUR</currency><stock>1</stock></item>"
                  b"<item><sku>X-2</sku><product_handle>y</product_handle><product_name>Y</product_name>"
                  b"<price>1</price><currency>EUR</currency><stock>1</stock></item></catalog>"),
    ("twice.json", b'[{"sku": "X-1", "product_handle": "x", "product_name": "X", "price": "1", "price": "2", '
                   b'"currency": "EUR", "stock": "1"}, {"sku": "X-2", "product_handle": "y", "product_name": "Y", '
                   b'"price": "1", "currency": "EUR", "stock": "1"}]'),
])
def test_a_field_given_twice_in_an_xml_or_json_item_rejects_that_item(database, local_settings, inbox, name,
                                                                      content):
    job = import_file(database, local_settings, inbox, name, content)
    assert (job.status, job.rows_imported, job.rows_failed) == ("partially_failed", 1, 1)
    assert report(inbox, job)[1:] == ["1,price,,price given more than once in one item"]


def test_report_numbers_are_records_and_its_header_says_so(database, local_settings, inbox):
    content = feed('M-1,m,Mug,"two\nlines",,1.00,EUR,1,,', row("M-2", price="-1"))
    job = import_file(database, local_settings, inbox, "records.csv", content)
    assert report(inbox, job) == ["record,column,value,message", "3,price,'-1,price must not be negative"]


@pytest.mark.parametrize("name", ["x" * 251 + ".csv", "каталог-весна.csv", "new\nline.csv", "a b;c.csv"])
def test_any_inbox_file_name_is_kept_as_data_and_the_job_finishes(database, local_settings, inbox, name):
    content = feed(row("N-1"), row("N-2", price="-1"))
    job = import_file(database, local_settings, inbox, name, content)
    assert (job.status, job.filename, job.rows_imported) == ("partially_failed", name, 1), job.message
    stored = pipeline.stored_name(job)
    assert (inbox / "processed" / stored).exists() and (inbox / "errors" / f"{stored}.csv").exists()
    assert stored == f"{job.id}.csv" and not (inbox / name).exists()
    [(context,)] = rows(database, "SELECT context FROM email_messages")
    assert "\n" not in context["filename"]


def test_a_finish_step_that_cannot_move_the_file_still_ends_the_job(database, local_settings, inbox, monkeypatch):
    drop(inbox, "stuck.csv", feed(row("S-1")))
    pipeline.discover(database, local_settings)
    [(job_id,)] = rows(database, "SELECT id FROM import_jobs")

    def refuse(*args):
        raise OSError(36, "File name too long")

    monkeypatch.setattr(pipeline, "_move_out", refuse)
    job = run_steps(database, local_settings, job_id)
    assert job.status == "succeeded" and job.finished_at and "could not be moved" in job.message
    # and one whose finish task failed for good (dead-lettered) is ended by its failure handler
    with database.session() as session:
        session.get(ImportJob, job_id).finished_at = None
    assert pipeline.finish_anyway(database, str(job_id), "finish failed: boom") == "succeeded"
    assert get_job(database, job_id).finished_at is not None


@pytest.mark.parametrize("name", ["каталог.csv", "y" * 300 + ".csv", "naïve café (1).csv"])
def test_uploads_with_any_name_are_stored_under_the_job_id(settings, tmp_path, name):
    from web import create_app

    local = replace(settings, STORAGE_LOCAL_DIR=str(tmp_path))
    local_app = create_app(local)
    client = local_app.test_client()
    database = local_app.extensions["shop"].db
    with database.session() as session:
        admin = make_user(session, "admin")
    response = client.post("/api/v1/imports", headers=bearer(local_app, admin),
                           data={"file": (io.BytesIO(feed(row("U-1"))), name)})
    assert response.status_code == 202, response.json
    job = run_steps(database, local, response.json["id"])
    assert job.status == "succeeded" and job.filename == pipeline.display_name(name, 255)
    assert [path.name for path in (tmp_path / "imports" / "processed").iterdir()] == [f"{job.id}.csv"]
    local_app.extensions["shop"].db.dispose()


def test_export_destinations_resolve_inside_the_configured_ones(settings, tmp_path):
    configured = replace(settings, EXPORT_DESTINATIONS=f"{tmp_path}/out,s3://bucket/exports")
    assert exports.allowed_destination(configured, None) == f"{tmp_path}/out"
    assert exports.allowed_destination(configured, f"{tmp_path}/out/daily/") == f"{tmp_path}/out/daily"
    assert exports.allowed_destination(configured, "s3://bucket/exports/2026") == "s3://bucket/exports/2026"
    for outside in (f"{tmp_path}/out/../elsewhere", f"{tmp_path}/out/%2e%2e/x", f"{tmp_path}/out//x",
                    f"{tmp_path}/out/./x", f"{tmp_path}/outside", "s3://bucket/exports/..", "s3://bucket/exports/a\\..",
                    f"{tmp_path}/out/a?b", "/etc"):
        with pytest.raises(inboxes.LocationError):
            exports.allowed_destination(configured, outside)


HOSTILE = [
    {"sku": "=1+2", "product_handle": "formula", "product_name": "=HYPERLINK(\"x\")", "price": "1.5",
     "currency": "EUR", "stock": "3", "description": "bell\u0007 and\ttab\r\nline", "attributes": "k=-v"},
    {"sku": "'Q-1", "product_handle": "quoted", "product_name": "'already quoted", "price": "2.0000",
     "currency": "EUR", "stock": "0", "category_path": " > ".join(f"{n:02d}" + "x" * 98 for n in range(15))},
    {"sku": "-DASH", "product_handle": "dash", "product_name": "@at", "price": "0", "currency": "USD",
     "stock": "7", "category_path": "Home > Kitchen", "description": "+plus"},
]

CATALOG = ("SELECT v.sku, v.price, v.currency, v.stock, v.attributes::text, p.handle, p.name, p.description, c.path "
           "FROM product_variants v JOIN products p ON p.id = v.product_id LEFT JOIN categories c "
           "ON c.id = p.category_id ORDER BY v.sku")


@pytest.mark.parametrize("fmt", ["csv", "json", "xml"])
def test_an_export_imported_again_leaves_the_catalog_unchanged(database, local_settings, inbox, tmp_path, fmt):
    first = import_file(database, local_settings, inbox, "hostile.json", json.dumps(HOSTILE).encode())
    assert (first.status, first.rows_imported) == ("succeeded", 3), first.message
    if fmt == "xml":  # XML 1.0 cannot hold control characters: they become U+FFFD, so keep them out here
        with database.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE products SET description = replace(description, chr(7), '')")
    before = rows(database, CATALOG)
    out = tmp_path / "exports"
    out.mkdir()
    with database.session() as session:
        job = exports.create(session, SYSTEM, "products", fmt, str(out))
    assert exports.run(database, local_settings, str(job.id)) == "succeeded"
    [written] = list(out.iterdir())
    second = import_file(database, local_settings, inbox, f"again.{fmt}", written.read_bytes())
    assert (second.status, second.rows_failed) == ("succeeded", 0), second.message
    assert rows(database, CATALOG) == before
    assert scalar(database, "SELECT count(*) FROM product_variants") == 3


def test_xml_exports_parse_whatever_the_stored_text_holds(database, tmp_path, settings):
    with database.engine.begin() as conn:
        product = conn.exec_driver_sql("INSERT INTO products (handle, name, description) VALUES "
                                       "('ctl', E'a\\x01b\\x1fc', E'x\\x0by\\rz <&>') RETURNING id").scalar()
        conn.exec_driver_sql(f"INSERT INTO product_variants (product_id, sku, price, currency, stock) "
                             f"VALUES ('{product}', E'S\\x02', 1, 'EUR', 1)")
    with database.session() as session:
        job = exports.create(session, SYSTEM, "products", "xml", str(tmp_path))
    assert exports.run(database, settings, str(job.id)) == "succeeded"
    [written] = list(tmp_path.glob("*.xml"))
    item = fromstring(written.read_bytes()).find("item")
    assert item.findtext("product_name") == "a\ufffdb\ufffdc"
    assert item.findtext("description") == "x\ufffdy\rz <&>" and item.findtext("sku") == "S\ufffd"


def test_csv_export_keeps_formula_quotes_readable_by_spreadsheets(database, local_settings, inbox, tmp_path):
    import_file(database, local_settings, inbox, "hostile.json", json.dumps(HOSTILE).encode())
    with database.session() as session:
        job = exports.create(session, SYSTEM, "products", "csv", str(tmp_path))
    exports.run(database, local_settings, str(job.id))
    [written] = list(tmp_path.glob("*.csv"))
    skus = [record["sku"] for record in csv.DictReader(io.StringIO(written.read_text()))]
    assert sorted(skus) == ["''Q-1", "'-DASH", "'=1+2"]


def test_exports_write_amounts_with_their_currencys_decimals(database, local_settings, inbox, tmp_path):
    feed_rows = [{"sku": sku, "product_handle": sku.lower(), "product_name": sku, "price": price,
                  "currency": currency, "stock": "1"} for sku, price, currency in
                 (("EUR-1", "12.5", "EUR"), ("JPY-1", "1500", "JPY"), ("KWD-1", "1.25", "KWD"))]
    assert import_file(database, local_settings, inbox, "money.json", json.dumps(feed_rows).encode()).status \
        == "succeeded"
    with database.session() as session:
        job = exports.create(session, SYSTEM, "products", "csv", str(tmp_path))
    exports.run(database, local_settings, str(job.id))
    [written] = list(tmp_path.glob("*.csv"))
    prices = {record["sku"]: record["price"] for record in csv.DictReader(io.StringIO(written.read_text()))}
    assert prices == {"EUR-1": "12.50", "JPY-1": "1500", "KWD-1": "1.250"}


def test_a_job_whose_step_was_dead_lettered_is_ended_by_inbox_polling(database, local_settings, inbox):
    drop(inbox, "stuck.csv", feed(row("R-1")))
    drop(inbox, "fresh.csv", feed(row("R-2")))
    pipeline.discover(database, local_settings)
    with database.engine.begin() as conn:  # the scan of stuck.csv was dead-lettered an hour ago
        conn.exec_driver_sql("UPDATE import_jobs SET updated_at = now() - interval '1 hour' "
                             "WHERE source_key = 'stuck.csv'")
    assert pipeline.reap_stuck(database, local_settings) == 1
    [(job_id, status, message)] = rows(database, "SELECT id, status, message FROM import_jobs "
                                                 "WHERE source_key = 'stuck.csv'")
    assert status == "failed" and "made no progress for 1800 s" in message
    assert pipeline.finish(database, local_settings, str(job_id)) == "failed"
    assert get_job(database, job_id).finished_at is not None
    assert rows(database, "SELECT status FROM import_jobs WHERE source_key = 'fresh.csv'") == [("queued",)]
    assert pipeline.reap_stuck(database, local_settings) == 0
