"""The variant facts every import chunk and indexing batch refreshes: right, and found by id, not by a scan."""

from __future__ import annotations

import json

from sqlalchemy import text

from models.catalog.indexing import REFRESH_FACTS, refresh_variant_facts
from tests.imports.conftest import rows

PRODUCTS = 50_000
SEED = """
    INSERT INTO products (handle, name, min_price, in_stock)
    SELECT 'facts-' || g, 'Facts ' || g, g % 97 + 0.5, true FROM generate_series(1, :count) g;
    INSERT INTO product_variants (product_id, sku, price, currency, stock)
    SELECT id, 'FACTS-' || handle, min_price, 'EUR', 3 FROM products WHERE handle LIKE 'facts-%';
"""


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def test_a_batch_is_refreshed_through_the_primary_key_not_a_scan_of_every_product(database):
    """At 50,000 products a batch of 100 reads its 100 rows: a scan of the table per batch made an
    import's refreshes quadratic in the catalog's size."""
    with database.engine.begin() as conn:
        conn.execute(text(SEED), {"count": PRODUCTS})
        conn.execute(text("ANALYZE products; ANALYZE product_variants"))
        ids = [str(i) for (i,) in conn.execute(text("SELECT id FROM products ORDER BY id LIMIT 100 OFFSET 7000"))]
        [[plan]] = conn.execute(text(f"EXPLAIN (FORMAT JSON) {REFRESH_FACTS.text}"), {"ids": ids})
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scans = {(node["Node Type"], node.get("Relation Name")) for node in plan_nodes(plan[0]["Plan"])}
    assert ("Seq Scan", "products") not in scans, scans


def test_only_products_whose_facts_are_wrong_are_rewritten(database):
    with database.engine.begin() as conn:
        conn.execute(text(SEED), {"count": 3})
        conn.execute(text("UPDATE products SET min_price = 99, in_stock = false WHERE handle = 'facts-2'"))
    before = dict(rows(database, "SELECT handle, ctid::text FROM products"))
    ids = [str(i) for (i,) in rows(database, "SELECT id FROM products")]
    with database.session() as session:
        refresh_variant_facts(session, ids)
    after = {handle: (ctid, price, stock) for handle, ctid, price, stock in
             rows(database, "SELECT handle, ctid::text, min_price, in_stock FROM products")}
    assert after["facts-2"][1:] == (2.5, True) and after["facts-2"][0] != before["facts-2"]
    for handle in ("facts-1", "facts-3"):
        assert after[handle][0] == before[handle], f"{handle} was rewritten with nothing to change"
