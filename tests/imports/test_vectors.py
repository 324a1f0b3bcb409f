"""The search vectors an import writes in its products upsert: those PostgreSQL search writes, and written once."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import text

from integrations.search.postgres import WRITE_FROM_TABLES
from tests.imports.conftest import DATA, import_file, rows

CHANGED = b"""sku,product_handle,product_name,description,category_path,price,currency,stock,image_urls,attributes
MUG-RED,mug,Porcelain Beaker,,Home > Dining > Cups,12.00,EUR,40,,colour=red
TEE-S,tee,Organic Tee,,Clothing > Tops,19.5,USD,100,,size=S
PLAIN-1,plain,Plain Thing,,,1.00,EUR,1,,
"""


def vectors(database) -> list[tuple]:
    return rows(database, "SELECT handle, name_vector::text, search_vector::text FROM products ORDER BY handle")


def vectors_of(database) -> list[tuple]:
    return rows(database, "SELECT handle, name_vector::text FROM products")


def rewritten_by_search(database, settings) -> list[tuple]:
    """The vectors PostgreSQL search writes for every product, computed from the tables (rolled back)."""
    ids = [str(i) for (i,) in rows(database, "SELECT id FROM products")]
    with database.engine.connect() as conn:
        transaction = conn.begin()
        written = conn.execute(WRITE_FROM_TABLES, {"config": settings.SEARCH_TEXT_CONFIG, "ids": ids}).all()
        assert len(written) == len(ids)
        found = [tuple(row) for row in conn.execute(text(
            "SELECT handle, name_vector::text, search_vector::text FROM products ORDER BY handle"))]
        transaction.rollback()
    return found


def test_a_new_product_gets_the_vectors_postgres_search_would_write(database, local_settings, inbox):
    import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    written = vectors(database)
    assert len(written) == 3 and all(name and search for _, name, search in written)
    assert written == rewritten_by_search(database, local_settings)
    # the indexing queued is told so: the task has no vector to write
    flags = {kwargs.get("vectors_written") for (kwargs,) in rows(
        database, "SELECT kwargs FROM outbox WHERE task = 'tasks.search.index_products'")}
    assert flags == {True}


def test_a_changed_product_gets_those_of_its_new_values_and_an_unchanged_one_is_not_rewritten(
        database, local_settings, inbox):
    import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    with database.engine.begin() as conn:  # a product's own attributes are in its vector (weight C)
        conn.execute(text("""UPDATE products SET attributes = '{"glaze": "speckled", "kiln": "wood"}'
                             WHERE handle = 'mug'"""))
    before = dict(rows(database, "SELECT handle, search_vector::text FROM products"))
    import_file(database, local_settings, inbox, "changed.csv", CHANGED)
    after = dict(rows(database, "SELECT handle, search_vector::text FROM products"))
    assert vectors(database) == rewritten_by_search(database, local_settings)
    assert "'beaker':2A" in after["mug"] and "'speckl'" in after["mug"] and "'dine'" in after["mug"]
    assert after["tee"] == before["tee"] and after["chef-knife"] == before["chef-knife"]


def test_a_product_without_vectors_gets_them_even_when_its_values_do_not_change(database, local_settings, inbox):
    import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    with database.engine.begin() as conn:  # written by plain SQL, never indexed
        conn.execute(text("UPDATE products SET name_vector = NULL, search_vector = NULL WHERE handle = 'tee'"))
    import_file(database, local_settings, inbox, "changed.csv", CHANGED)
    assert vectors(database) == rewritten_by_search(database, local_settings)


def test_the_indexing_task_leaves_the_vectors_an_import_wrote(database, local_settings, inbox, current_shop):
    from tasks.search import index_products

    import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    before = dict(rows(database, "SELECT handle, ctid::text FROM products"))
    ids = [str(i) for (i,) in rows(database, "SELECT id FROM products")]
    assert index_products(product_ids=ids, vectors_written=True) == {"indexed": 3, "deleted": 0}
    assert dict(rows(database, "SELECT handle, ctid::text FROM products")) == before  # no row written again
    assert index_products(product_ids=ids) == {"indexed": 3, "deleted": 0}  # other writers: vectors compared
    assert dict(rows(database, "SELECT handle, ctid::text FROM products")) == before  # and found current
    with database.engine.begin() as conn:  # written by plain SQL since
        conn.execute(text("UPDATE products SET name = 'Chef knife, forged' WHERE handle = 'chef-knife'"))
    before = dict(rows(database, "SELECT handle, ctid::text FROM products"))
    assert index_products(product_ids=ids) == {"indexed": 3, "deleted": 0}
    after = dict(rows(database, "SELECT handle, ctid::text FROM products"))
    assert after["chef-knife"] != before["chef-knife"] and "'forg'" in dict(vectors_of(database))["chef-knife"]
    assert {h: c for h, c in after.items() if h != "chef-knife"} == {
        h: c for h, c in before.items() if h != "chef-knife"}


def test_with_another_search_backend_the_import_writes_no_vectors(database, local_settings, inbox):
    settings = replace(local_settings, SEARCH_BACKEND="elasticsearch")
    import_file(database, settings, inbox, "catalog.csv", DATA / "catalog.csv")
    assert {search for _, _, search in vectors(database)} == {None}
    assert {kwargs.get("vectors_written") for (kwargs,) in rows(
        database, "SELECT kwargs FROM outbox WHERE task = 'tasks.search.index_products'")} == {None}
