"""The pipeline's steps against the real database, run in this process on a local-folder inbox."""

from decimal import Decimal

from tests.imports.conftest import DATA, import_file, rows, scalar


def test_a_csv_feed_lands_in_categories_products_and_variants(database, local_settings, inbox):
    job = import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    assert (job.status, job.rows_total, job.rows_imported, job.rows_failed) == ("succeeded", 5, 5, 0)
    assert job.checksum and job.format == "csv" and job.chunks_total == 2
    assert rows(database, "SELECT path FROM categories ORDER BY path") == [
        ("Clothing",), ("Clothing > Tops",), ("Home",), ("Home > Kitchen",), ("Home > Kitchen > Knives",),
        ("Home > Kitchen > Mugs",)]
    assert rows(database, "SELECT p.handle, p.name, c.path FROM products p JOIN categories c ON c.id = p.category_id "
                          "ORDER BY handle") == [("chef-knife", "Chef's Knife", "Home > Kitchen > Knives"),
                                                 ("mug", "Stoneware Mug", "Home > Kitchen > Mugs"),
                                                 ("tee", "Organic Tee", "Clothing > Tops")]
    assert rows(database, "SELECT sku, price, currency, stock, attributes FROM product_variants "
                          "WHERE sku = 'KN-CHEF-24'") == [
        ("KN-CHEF-24", Decimal("59.9000"), "EUR", 5, {"size": "24cm", "steel": "VG10"})]
    assert (inbox / "processed" / "catalog.csv").exists() and not (inbox / "catalog.csv").exists()
    assert not (inbox / "errors").exists()
    # search indexing is asked for the changed products, in the chunks' own transactions
    queued = rows(database, "SELECT kwargs FROM outbox WHERE task = 'tasks.search.index_products'")
    assert {pid for (kwargs,) in queued for pid in kwargs["product_ids"]} == {
        str(pid) for (pid,) in rows(database, "SELECT id FROM products")}
    # and the summary email to IMPORT_REPORT_EMAIL
    assert rows(database, "SELECT to_address, template, context->>'status' FROM email_messages") == [
        ("merch@example.com", "import_report", "succeeded")]


def test_importing_the_same_rows_again_changes_nothing(database, local_settings, inbox):
    import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    stamps = rows(database, "SELECT sku, updated_at FROM product_variants ORDER BY sku")
    indexing = scalar(database, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products'")
    # the same rows in another file (another checksum): merged again, nothing changes
    content = (DATA / "catalog.csv").read_bytes() + b"\n"
    job = import_file(database, local_settings, inbox, "again.csv", content)
    assert job.status == "succeeded" and job.rows_imported == 5
    assert rows(database, "SELECT sku, updated_at FROM product_variants ORDER BY sku") == stamps
    assert scalar(database, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products'") == indexing


def test_the_same_file_again_is_a_duplicate(database, local_settings, inbox):
    first = import_file(database, local_settings, inbox, "catalog.csv", DATA / "catalog.csv")
    second = import_file(database, local_settings, inbox, "catalog-copy.csv", DATA / "catalog.csv")
    assert second.status == "duplicate" and str(first.id) in second.message
    assert (inbox / "failed" / "catalog-copy.csv").exists()
    assert str(first.id) in (inbox / "errors" / "catalog-copy.csv.csv").read_text()


def test_formats_and_encodings(database, local_settings, inbox):
    for name in ("catalog.xml", "catalog.json", "catalog.ndjson", "catalog_semicolon_latin1.csv",
                 "catalog_tab_bom.tsv"):
        job = import_file(database, local_settings, inbox, name, DATA / name)
        assert job.status in ("succeeded", "duplicate"), (name, job.message)
    assert rows(database, "SELECT name FROM products WHERE handle IN ('cafe-cup', 'tab-thing') ORDER BY handle") == [
        ("Café Cup",), ("Tab Thing — béta",)]
    assert scalar(database, "SELECT attributes->>'couleur' FROM product_variants WHERE sku = 'CAFÉ-1'") == "crème"
    assert scalar(database, "SELECT attributes->>'steel' FROM product_variants WHERE sku = 'KN-CHEF-20'") == "VG10"


def test_a_source_named_through_the_api_is_not_picked_up_twice(database, local_settings, inbox):
    from imports import jobs, pipeline
    from models.users.permissions import SYSTEM
    from tests.imports.conftest import drop, run_steps

    drop(inbox, "named.csv", DATA / "catalog.csv")
    with database.session() as session:
        job_id = jobs.start_from_source(session, local_settings, SYSTEM, f"file://{inbox}/named.csv").id
    assert pipeline.discover(database, local_settings) == 0
    assert run_steps(database, local_settings, job_id).status == "succeeded"


def test_image_urls_queue_one_fetch_per_product_for_new_urls_only(database, local_settings, inbox):
    header = b"sku,product_handle,product_name,price,currency,stock,image_urls\n"
    feed = header + (b"A-1,a,A,1.00,EUR,1,https://img.example/a1.png|https://img.example/a2.png\n"
                     b"A-2,a,A,1.00,EUR,1,https://img.example/a2.png\nB-1,b,B,1.00,EUR,1,\n")
    import_file(database, local_settings, inbox, "images.csv", feed)
    [(kwargs,)] = rows(database, "SELECT kwargs FROM outbox WHERE task = 'tasks.imports.fetch_images'")
    assert kwargs["urls"] == ["https://img.example/a1.png", "https://img.example/a2.png"]
    assert kwargs["product_id"] == str(scalar(database, "SELECT id FROM products WHERE handle = 'a'"))
    with database.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO product_images (product_id, storage_key, source_url, content_type) "
                             f"VALUES ('{kwargs['product_id']}', 'k', 'https://img.example/a1.png', 'image/png')")
    import_file(database, local_settings, inbox, "images-again.csv", feed.replace(b"1.00", b"2.00"))
    queued = rows(database, "SELECT kwargs FROM outbox WHERE task = 'tasks.imports.fetch_images' ORDER BY created_at")
    assert [k["urls"] for (k,) in queued] == [["https://img.example/a1.png", "https://img.example/a2.png"],
                                              ["https://img.example/a2.png"]]


def test_a_variant_moved_to_another_product_leaves_the_old_one_with_facts_of_its_remaining_variants(
        database, local_settings, inbox):
    """The product a variant leaves is refreshed and reindexed too: its lowest price and stock were the moved
    variant's, and listings kept showing them."""
    header = b"sku,product_handle,product_name,price,currency,stock\n"
    import_file(database, local_settings, inbox, "first.csv",
                header + b"MOVE-1,old-home,Old Home,5.00,EUR,3\nSTAY-1,old-home,Old Home,20.00,EUR,0\n")
    assert rows(database, "SELECT min_price, in_stock FROM products WHERE handle = 'old-home'") == [
        (Decimal("5.0000"), True)]
    before = scalar(database, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products'")
    job = import_file(database, local_settings, inbox, "second.csv",
                      header + b"MOVE-1,new-home,New Home,7.00,EUR,2\n")
    assert job.status == "succeeded"
    assert rows(database, "SELECT p.handle FROM product_variants v JOIN products p ON p.id = v.product_id "
                          "WHERE v.sku = 'MOVE-1'") == [("new-home",)]
    assert rows(database, "SELECT handle, min_price, in_stock FROM products ORDER BY handle") == [
        ("new-home", Decimal("7.0000"), True), ("old-home", Decimal("20.0000"), False)]
    queued = rows(database, "SELECT kwargs FROM outbox WHERE task = 'tasks.search.index_products' "
                            "ORDER BY created_at")[before:]
    assert {pid for (kwargs,) in queued for pid in kwargs["product_ids"]} == {
        str(pid) for (pid,) in rows(database, "SELECT id FROM products")}  # both: the old one's pages too
