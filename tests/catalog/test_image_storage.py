"""Storing uploads and feed images without a worker running: the task bodies against real storage, the failures
in between (a transient storage error, a product deleted meanwhile), and what web queues for deletions."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
import requests
from sqlalchemy import text

from integrations.errors import TransientError
from integrations.storage import make_storage
from models.catalog.images import store_staged, upload_limits
from tests.catalog.conftest import API
from tests.catalog.test_images import jpeg_bytes, listed, png_bytes, upload


@pytest.fixture
def local_app(settings, tmp_path):
    from web import create_app

    app = create_app(replace(settings, STORAGE_BACKEND="local", STORAGE_LOCAL_DIR=str(tmp_path / "store")))
    yield app
    app.extensions["shop"].db.dispose()


def store(app, staged_id: str, storage=None) -> str:
    """What `tasks.imports.store_image` does, with this app's settings."""
    shop = app.extensions["shop"]
    return store_staged(shop.db, storage or make_storage(shop.settings), uuid.UUID(staged_id),
                        upload_limits(shop.settings))


def count(app, sql: str) -> int:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


class Flaky:
    """Local storage whose next `put` does something else first (fails, or deletes the product)."""

    def __init__(self, inner, before_put):
        self.inner, self.before_put = inner, before_put

    def put(self, key, data, content_type=None):
        self.before_put()
        self.inner.put(key, data, content_type)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_transient_storage_error_keeps_the_upload_staged_for_the_retry(local_app, headers, create_product,
                                                                         tmp_path):
    client = local_app.test_client()
    product = create_product("Mug")
    staged = upload(client, headers["staff"], product["id"], png_bytes(), "image/png").get_json()
    assert count(local_app, "SELECT count(*) FROM outbox WHERE task = 'tasks.imports.store_image'") == 1

    def fail():
        raise TransientError("storage away")

    storage = make_storage(local_app.extensions["shop"].settings)
    with pytest.raises(TransientError):
        store(local_app, staged["id"], Flaky(storage, fail))
    assert count(local_app, "SELECT count(*) FROM staged_images") == 1 and listed(client, product["id"]) == []
    assert not (tmp_path / "store" / "products").exists()
    assert store(local_app, staged["id"]) == "stored"
    assert store(local_app, staged["id"]) == "already handled"  # a repeated delivery
    [image] = listed(client, product["id"])
    assert (tmp_path / "store" / "products" / product["id"] / f"{staged['id']}.png").read_bytes() == png_bytes()
    assert image["id"] == staged["id"] and count(local_app, "SELECT count(*) FROM staged_images") == 0
    indexed = count(local_app, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_products' "
                               f"AND kwargs->'product_ids' ? '{product['id']}'")
    assert indexed >= 2  # at creation, and again for the new image


def test_a_product_deleted_while_its_image_is_stored_leaves_no_file(local_app, headers, create_product, tmp_path):
    client = local_app.test_client()
    product = create_product("Mug")
    staged = upload(client, headers["staff"], product["id"], png_bytes(), "image/png").get_json()

    def delete_product():
        assert client.delete(f"{API}/products/{product['id']}", headers=headers["admin"]).status_code == 204

    storage = make_storage(local_app.extensions["shop"].settings)
    assert store(local_app, staged["id"], Flaky(storage, delete_product)) == "product gone"
    assert not list((tmp_path / "store" / "products" / product["id"]).iterdir())
    assert count(local_app, "SELECT count(*) FROM staged_images") == 0


def test_deletes_queue_the_files_for_a_worker_and_touch_no_storage(local_app, headers, create_product, tmp_path):
    client = local_app.test_client()
    product = create_product("Mug")
    ids = [upload(client, headers["staff"], product["id"], png_bytes(), "image/png").get_json()["id"]
           for _ in range(2)]
    for staged_id in ids:
        assert store(local_app, staged_id) == "stored"
    folder = tmp_path / "store" / "products" / product["id"]
    assert client.delete(f"{API}/products/{product['id']}/images/{ids[0]}", headers=headers["staff"]).status_code \
        == 204
    assert client.delete(f"{API}/products/{product['id']}", headers=headers["admin"]).status_code == 204
    assert len(list(folder.iterdir())) == 2  # the request deleted nothing itself
    with local_app.extensions["shop"].db.engine.connect() as conn:
        queued = conn.execute(text("SELECT kwargs->'keys' FROM outbox WHERE task = 'tasks.maintenance.delete_files' "
                                   "ORDER BY created_at")).scalars().all()
    assert queued == [[f"products/{product['id']}/{ids[0]}.png"], [f"products/{product['id']}/{ids[1]}.png"]]


def test_upload_to_s3_gives_a_url_the_client_can_fetch(settings, s3_twin, headers, create_product):
    from web import create_app

    bucket = s3_twin.bucket("shop-images")
    env = s3_twin.env(bucket)
    s3_settings = replace(settings, **env)
    app = create_app(s3_settings)
    try:
        product = create_product("Mug")
        response = upload(app.test_client(), headers["staff"], product["id"], jpeg_bytes(), "image/jpeg", "a.jpg")
        assert response.status_code == 202, response.get_json()
        assert "Contents" not in s3_twin.client().list_objects_v2(Bucket=bucket)  # the request stored nothing
        # what the worker's task does, with this test's S3 settings
        assert store_staged(app.extensions["shop"].db, make_storage(s3_settings), uuid.UUID(response.get_json()["id"]),
                            upload_limits(s3_settings)) == "stored"
        [image] = listed(app.test_client(), product["id"])
        url = image["url"]
        assert url.startswith(s3_twin.endpoint) and "Signature" in url
        fetched = requests.get(url, timeout=5)
        assert fetched.status_code == 200 and fetched.content == jpeg_bytes()
        keys = [item["Key"] for item in s3_twin.client().list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == [f"products/{product['id']}/{response.get_json()['id']}.jpg"]
    finally:
        app.extensions["shop"].db.dispose()


def test_listing_and_search_items_are_the_detail_pages_exactly(local_app, headers, create_product, create_category):
    """Pages are loaded in one query without ORM objects: each item must still be the product's detail body."""
    from tests.catalog.conftest import index_now, variant

    client = local_app.test_client()
    category = create_category("Kitchen")
    full = create_product("Zinc kettle", description="Boils", categoryId=category["id"],
                          attributes={"colour": "grey", "litres": 1.5, "tags": ["a", "b"]},
                          variants=[variant("ZB", "12.5", stock=2), variant("ZA", "0.1000", stock=0)])
    bare = create_product("Zinc plain")
    staged = upload(client, headers["staff"], full["id"], png_bytes(), "image/png").get_json()
    local = local_app.extensions["shop"].settings
    assert store_staged(local_app.extensions["shop"].db, make_storage(local), uuid.UUID(staged["id"]),
                        upload_limits(local)) == "stored"
    index_now(full["id"], bare["id"])
    details = {p["id"]: client.get(f"{API}/products/{p['id']}", headers=headers["customer"]).get_json()
               for p in (full, bare)}
    assert [v["sku"] for v in details[full["id"]]["variants"]] == ["ZA", "ZB"] and details[full["id"]]["images"]
    for query in ("sort=name", "q=zinc", f"category={category['id']}&sort=price"):
        items = client.get(f"{API}/products?{query}", headers=headers["customer"]).get_json()["items"]
        assert items, query
        for item in items:
            assert item == details[item["id"]] and list(item) == list(details[item["id"]]), query
