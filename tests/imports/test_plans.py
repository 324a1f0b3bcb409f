"""A chunk's statements find its products through the handle's index: none reads every product of the catalog."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from imports.load import ANALYZE_CHUNK, MERGE_PRODUCTS_WITH_VECTORS, MERGE_VARIANTS, NEW_IMAGES
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
