"""Chunks of one file merged in parallel and out of file order: the last row of a product still wins, counts exact."""

from __future__ import annotations

import threading
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import text

from imports import pipeline
from tests.imports.conftest import drop, get_job, rows, scalar

HEADER = "sku,product_handle,product_name,description,category_path,price,currency,stock"
CHUNK = 3


def shared_product_feed(chunks: int) -> tuple[bytes, dict]:
    """`chunks` chunks of 3 rows, one row of product `shared` in each (its other rows: one product apiece).

    The shared product's name changes on every row; its description and
    category are given on some rows only and blank on the last ones, so each
    must come from the last row that gives one.
    """
    lines, expected = [HEADER], {}
    for chunk in range(chunks):
        record = 2 + chunk * CHUNK  # the header is record 1
        description = f"described on record {record}" if chunk % 3 != 2 and chunk < chunks - 2 else ""
        category = f"Shelf {chunk}" if chunk < chunks - 1 else ""
        lines.append(f"SKU-S{chunk},shared,Shared as of record {record},{description},{category},{chunk}.50,EUR,"
                     f"{chunk}")
        expected["name"] = f"Shared as of record {record}"
        if description:
            expected["description"] = description
        if category:
            expected["category"] = category
        lines += [f"SKU-{chunk}-{n},solo-{chunk}-{n},Solo {chunk} {n},,Shelf {chunk},1.00,EUR,1" for n in (1, 2)]
    return ("\n".join(lines) + "\n").encode(), expected


@pytest.fixture
def scanned(database, local_settings, inbox):
    """Drop a feed, discover it and scan it; the job's id."""
    def scan(content: bytes, name: str = "parallel.csv"):
        drop(inbox, name, content)
        before = {job for (job,) in rows(database, "SELECT id FROM import_jobs")}
        assert pipeline.discover(database, local_settings) == 1
        [job_id] = {job for (job,) in rows(database, "SELECT id FROM import_jobs")} - before
        assert pipeline.scan(database, local_settings, str(job_id)) == "scanned"
        return str(job_id)
    return scan


def shared_product(database) -> dict:
    [(name, description, category, updated_at)] = rows(
        database, "SELECT p.name, p.description, c.path, p.updated_at FROM products p "
                  "LEFT JOIN categories c ON c.id = p.category_id WHERE p.handle = 'shared'")
    return {"name": name, "description": description, "category": category, "updated_at": updated_at}


def finishes_queued(database, job_id: str) -> int:
    return scalar(database, "SELECT count(*) FROM outbox WHERE task = 'tasks.imports.finish_import' "
                            "AND kwargs->>'job_id' = :job", job=job_id)


def test_the_scan_queues_one_load_per_part(database, local_settings, scanned):
    content, _ = shared_product_feed(5)
    job_id = scanned(content)
    parts = rows(database, "SELECT kwargs->>'part', kwargs->>'parts' FROM outbox WHERE task = "
                           "'tasks.imports.load_chunks' AND kwargs->>'job_id' = :job ORDER BY 1", job=job_id)
    assert parts == [(str(part), str(local_settings.IMPORT_MERGE_PARALLEL))
                     for part in range(local_settings.IMPORT_MERGE_PARALLEL)]


def test_chunks_merged_last_first_end_with_each_products_last_row(database, local_settings, scanned):
    chunks = 8
    content, expected = shared_product_feed(chunks)
    job_id = scanned(content)
    # One part per chunk, run from the last to the first: every chunk completes after the ones below it in the file.
    results = [pipeline.load(database, local_settings, job_id, part, chunks) for part in reversed(range(chunks))]
    assert results == ["part merged"] * (chunks - 1) + ["finish_import"]
    product = shared_product(database)
    assert {key: product[key] for key in expected} == expected
    assert expected["description"] == "described on record 14" and expected["category"] == "Shelf 6"
    job = get_job(database, job_id)
    assert (job.rows_total, job.rows_imported, job.rows_failed, job.chunks_total) == (3 * chunks, 3 * chunks, 0, chunks)
    assert rows(database, "SELECT count(*), sum(rows_imported) FROM import_chunks") == [(chunks, 3 * chunks)]
    assert finishes_queued(database, job_id) == 1  # queued by the transaction of the chunk merged last, only
    # every part run again (a redelivery): nothing merged twice, nothing counted twice
    assert {pipeline.load(database, local_settings, job_id, part, chunks) for part in range(chunks)} == {
        "finish_import"}
    assert get_job(database, job_id).rows_imported == 3 * chunks
    assert pipeline.finish(database, local_settings, job_id) == "succeeded"
    assert pipeline.finish(database, local_settings, job_id) == "nothing to finish"


def test_a_new_file_beats_the_rows_an_earlier_import_recorded(database, local_settings, scanned):
    chunks = 6
    content, expected = shared_product_feed(chunks)
    first = scanned(content)
    for part in reversed(range(chunks)):
        pipeline.load(database, local_settings, first, part, chunks)
    # A second file: the shared product in its first chunk only, with a blank description and category,
    # and rows numbered below the ones the first import recorded: the new job's rows win all the same.
    second = scanned(f"{HEADER}\nSKU-S0,shared,Renamed,,,1.00,EUR,1\n".encode(), "second.csv")
    assert pipeline.load(database, local_settings, second) == "finish_import"
    product = shared_product(database)
    assert (product["name"], product["description"], product["category"]) == (
        "Renamed", expected["description"], expected["category"])


def test_importing_the_same_rows_again_moves_no_product(database, local_settings, scanned):
    chunks = 6
    content, _ = shared_product_feed(chunks)
    first = scanned(content)
    for part in reversed(range(chunks)):
        pipeline.load(database, local_settings, first, part, chunks)
    stamps = rows(database, "SELECT handle, updated_at FROM products ORDER BY handle")
    indexing = scalar(database, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products'")
    # Another checksum, the same rows, the last chunk merged first: its rows are recorded without moving
    # updated_at, and every earlier row then loses to them.
    again = scanned(content + b"\n", "again.csv")
    for part in reversed(range(chunks)):
        pipeline.load(database, local_settings, again, part, chunks)
    assert rows(database, "SELECT handle, updated_at FROM products ORDER BY handle") == stamps
    assert scalar(database, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products'") == indexing
    # In file order the shared product passes through its earlier rows' names on the way, as a serial
    # merge would; every product whose rows agree stays as it was.
    third = scanned(content + b"\n\n", "third.csv")
    for part in range(chunks):
        pipeline.load(database, local_settings, third, part, chunks)
    assert [stamp for stamp in rows(database, "SELECT handle, updated_at FROM products ORDER BY handle")
            if stamp[0] != "shared"] == [stamp for stamp in stamps if stamp[0] != "shared"]
    assert shared_product(database)["name"] == f"Shared as of record {2 + (chunks - 1) * CHUNK}"


def test_parts_merging_at_once_with_an_earlier_chunk_committing_last(database, local_settings, scanned, monkeypatch):
    """Two parts in two threads, each in its own transaction; chunk 0 is held until chunk 3 has committed."""
    chunks = 6
    content, expected = shared_product_feed(chunks)
    job_id = scanned(content)
    assert [pipeline.part_of(number, chunks, 2) for number in range(chunks)] == [0, 0, 0, 1, 1, 1]
    chunk_three_committed = threading.Event()
    merge_chunk = pipeline._merge_chunk

    def ordered(db, job, number, chunk, valid, *config):
        if number == 0:
            assert chunk_three_committed.wait(30), "chunk 3 was never merged"
        result = merge_chunk(db, job, number, chunk, valid, *config)
        if number == 3:
            chunk_three_committed.set()
        return result

    monkeypatch.setattr(pipeline, "_merge_chunk", ordered)
    settings = replace(local_settings, IMPORT_MERGE_PARALLEL=2)
    results: dict[int, str] = {}
    threads = [threading.Thread(target=lambda part=part: results.__setitem__(
        part, pipeline.load(database, settings, job_id, part, 2))) for part in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results.values()) == ["finish_import", "part merged"]
    product = shared_product(database)
    assert {key: product[key] for key in expected} == expected
    job = get_job(database, job_id)
    assert (job.rows_imported, job.rows_failed) == (3 * chunks, 0)
    assert finishes_queued(database, job_id) == 1
    assert scalar(database, "SELECT count(*) FROM products") == 1 + 2 * chunks


FACTS_AS_VARIANTS_GIVE = """
    SELECT p.handle, p.min_price, p.in_stock,
           (SELECT min(v.price) FROM product_variants v WHERE v.product_id = p.id),
           EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id AND v.stock > v.reserved)
    FROM products p ORDER BY p.handle
"""


@pytest.mark.parametrize("order", ["file order", "last first"])
def test_new_products_facts_are_those_of_all_their_variants(database, local_settings, scanned, order):
    """A new product is inserted with its chunk's lowest price and stock: right when its variants span chunks
    (in either commit order) and when a variant moves in from another product with every unit reserved."""
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO products (handle, name, min_price, in_stock) VALUES ('old', 'Old', 3, false)"))
        conn.execute(text("INSERT INTO product_variants (product_id, sku, price, currency, stock, reserved) "
                          "SELECT id, 'SKU-MOVED', 3, 'EUR', 4, 4 FROM products WHERE handle = 'old'"))
    content = "\n".join([
        HEADER,
        "SKU-A1,spread,Spread,,,9.00,EUR,0",    # chunk 0: no stock, dear
        "SKU-A2,spread,Spread,,,8.00,EUR,0",
        "SKU-B1,solo,Solo,,,5.00,EUR,2",
        "SKU-A3,spread,Spread,,,1.50,EUR,7",    # chunk 1: the lowest price and the only stock
        "SKU-MOVED,moved,Moved,,,2.00,EUR,4",   # stock 4, all 4 reserved by open orders: not in stock
        "SKU-C1,plain,Plain,,,6.00,EUR,1",
    ]).encode() + b"\n"
    job_id = scanned(content)
    parts = [0, 1] if order == "file order" else [1, 0]
    results = [pipeline.load(database, local_settings, job_id, part, 2) for part in parts]
    assert results[-1] == "finish_import"
    facts = {handle: (price, stock, true_price, true_stock)
             for handle, price, stock, true_price, true_stock in rows(database, FACTS_AS_VARIANTS_GIVE)}
    assert set(facts) == {"old", "spread", "solo", "moved", "plain"}
    for handle in ("spread", "solo", "moved", "plain"):  # not "old": the product a variant leaves is not refreshed
        price, stock, true_price, true_stock = facts[handle]
        assert (price, stock) == (true_price, true_stock), handle
    assert facts["spread"][:2] == (Decimal("1.5"), True)
    assert facts["moved"][:2] == (Decimal("2"), False)
