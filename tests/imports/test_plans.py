"""A chunk's statements find its products through the handle's index: none reads every product of the catalog."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from imports.load import ANALYZE_CHUNK, MERGE_PRODUCTS_WITH_VECTORS, MERGE_VARIANTS, NEW_IMAGES, STAGED_BELOW_RESERVED
from tests.imports.test_variant_facts import plan_nodes

PRODUCTS = 50_000
SEED = """
    INSERT INTO products (handle, name) SELECT 'plan-' || g, 'Plan ' || g FROM generate_series(1, :count) g;
    ANALYZE products;
"""
STAGE = """
    CREATE TEMP TABLE chunk_staging (LIKE import_staging) ON COMMIT DROP;
    INSERT INTO chunk_staging (job_id, chunk, row_no, sku, product_handle, product_name, price, currency, stock,
                               image_urls)
    SELECT :job_id, 0, g, 'PLAN-' || g, 'plan-' || (g * 7), 'Plan ' || g, 1, 'EUR', 1, 'https://img.example/' || g
    FROM generate_series(1, 3000) g;
"""


@pytest.mark.parametrize("statement", [MERGE_VARIANTS, NEW_IMAGES, MERGE_PRODUCTS_WITH_VECTORS],
                         ids=["variants", "images", "products"])
def test_a_chunk_of_3000_rows_reads_its_products_not_the_catalog_of_50000(database, statement):
    """A scan of every product per chunk made an import into a large catalog cost more with every product."""
    job_id = uuid.uuid4()
    with database.engine.begin() as conn:
        conn.execute(text(SEED), {"count": PRODUCTS})
        conn.execute(text("INSERT INTO import_jobs (id, inbox, source_key, filename, policy, status) "
                          "VALUES (:j, 'plans', :k, 'plans.csv', 'partial', 'running')"),
                     {"j": job_id, "k": str(job_id)})
        conn.execute(text(STAGE), {"job_id": job_id})
        conn.execute(ANALYZE_CHUNK)  # the statistics the merge gathers
        [[plan]] = conn.execute(text(f"EXPLAIN (FORMAT JSON) {statement.text}"),
                                {"job_id": job_id, "config": "english"})
        conn.rollback()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scans = {(node["Node Type"], node.get("Relation Name")) for node in plan_nodes(plan[0]["Plan"])}
    assert ("Seq Scan", "products") not in scans, scans


def test_the_scans_stock_check_probes_the_chunks_skus_not_every_variant(database):
    """The scan looks up the reserved units of a chunk's SKUs in the SKU index, however many variants exist."""
    job_id = uuid.uuid4()
    with database.engine.begin() as conn:
        conn.execute(text(SEED), {"count": PRODUCTS})
        conn.execute(text("INSERT INTO product_variants (product_id, sku, price, currency, stock) "
                          "SELECT id, 'PLAN-' || substr(handle, 6), 1, 'EUR', 1 FROM products; "
                          "ANALYZE product_variants"))
        conn.execute(text("INSERT INTO import_staging (job_id, chunk, row_no, sku, product_handle, product_name, "
                          "price, currency, stock) SELECT :job_id, 0, g, 'PLAN-' || (g * 7), 'plan-' || (g * 7), "
                          "'Plan', 1, 'EUR', 0 FROM generate_series(1, 3000) g"), {"job_id": job_id})
        [[plan]] = conn.execute(text(f"EXPLAIN (FORMAT JSON) {STAGED_BELOW_RESERVED.text}"),
                                {"job_id": job_id, "chunk": 0})
        conn.rollback()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scans = {(node["Node Type"], node.get("Relation Name")) for node in plan_nodes(plan[0]["Plan"])}
    assert ("Seq Scan", "product_variants") not in scans, scans
    assert ("Seq Scan", "import_staging") not in scans, scans
