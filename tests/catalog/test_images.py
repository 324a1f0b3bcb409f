"""Image uploads: the real type checked from the bytes, limits enforced, stored locally or in S3."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace

import pytest
import requests
from PIL import Image

from tests.catalog.conftest import API


def png_bytes(size=(4, 3), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (5, 5), (0, 90, 0)).save(buffer, "JPEG")
    return buffer.getvalue()


def bomb_png(width=30000, height=30000) -> bytes:
    """A tiny PNG that claims 900 million pixels: refused from its header, never expanded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) \
        + chunk(b"IEND", b"")


def upload(client, headers, product_id, data: bytes, content_type: str, name="photo.png"):
    return client.post(f"{API}/products/{product_id}/images", headers=headers,
                       data={"file": (io.BytesIO(data), name, content_type), "altText": "A red mug"},
                       content_type="multipart/form-data")


@pytest.fixture
def local_app(settings, tmp_path):
    from web import create_app

    app = create_app(replace(settings, STORAGE_BACKEND="local", STORAGE_LOCAL_DIR=str(tmp_path / "store")))
    yield app
    app.extensions["shop"].db.dispose()


def test_upload_to_the_local_folder_served_under_media(local_app, headers, create_product, tmp_path):
    client = local_app.test_client()
    product = create_product("Mug")
    response = upload(client, headers["staff"], product["id"], png_bytes(), "image/png")
    assert response.status_code == 201, response.get_json()
    image = response.get_json()
    assert image["contentType"] == "image/png" and image["altText"] == "A red mug"
    assert image["url"].startswith(f"/media/products/{product['id']}/") and image["url"].endswith(".png")
    served = client.get(image["url"])
    assert served.status_code == 200 and served.data == png_bytes() and served.mimetype == "image/png"
    assert "immutable" in served.headers["Cache-Control"]
    assert list((tmp_path / "store" / "products" / product["id"]).iterdir())

    detail = client.get(f"{API}/products/{product['id']}").get_json()
    assert [i["url"] for i in detail["images"]] == [image["url"]]
    listed = client.get(f"{API}/products/{product['id']}/images").get_json()
    assert [i["id"] for i in listed["items"]] == [image["id"]] and listed["nextCursor"] is None
    assert client.delete(f"{API}/products/{product['id']}/images/{image['id']}",
                         headers=headers["staff"]).status_code == 204
    assert client.get(image["url"]).status_code == 404
    assert client.get(f"{API}/products/{product['id']}").get_json()["images"] == []


def test_media_refuses_keys_that_leave_the_store(local_app):
    client = local_app.test_client()
    assert client.get("/media/../settings.py").status_code == 404
    assert client.get("/media/products/%2e%2e/%2e%2e/settings.py").status_code == 404


def test_upload_to_s3_gives_a_url_the_client_can_fetch(settings, s3_twin, headers, create_product):
    from web import create_app

    bucket = s3_twin.bucket("shop-images")
    env = s3_twin.env(bucket)
    app = create_app(replace(settings, **env))
    try:
        product = create_product("Mug")
        response = upload(app.test_client(), headers["staff"], product["id"], jpeg_bytes(), "image/jpeg", "a.jpg")
        assert response.status_code == 201, response.get_json()
        url = response.get_json()["url"]
        assert url.startswith(s3_twin.endpoint) and "Signature" in url
        fetched = requests.get(url, timeout=5)
        assert fetched.status_code == 200 and fetched.content == jpeg_bytes()
        keys = [item["Key"] for item in s3_twin.client().list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == [f"products/{product['id']}/{response.get_json()['id']}.jpg"]
    finally:
        app.extensions["shop"].db.dispose()


@pytest.mark.parametrize(("data", "content_type", "message"), [
    (b"GIF89a not really", "image/gif", "not an image"),
    (b"<?php echo 1; ?>", "image/png", "not an image"),
    (png_bytes(), "image/jpeg", "its bytes are image/png"),
    (png_bytes(), "text/html", "is not accepted"),
    (b"", "image/png", "empty"),
    (bomb_png(), "image/png", "pixels"),
])
def test_bad_images_are_refused_naming_the_file_field(local_app, headers, create_product, data, content_type,
                                                      message):
    client = local_app.test_client()
    product = create_product("Mug")
    response = upload(client, headers["staff"], product["id"], data, content_type)
    assert response.status_code == 400 and message in response.get_json()["errors"]["file"][0]
    assert client.get(f"{API}/products/{product['id']}").get_json()["images"] == []


def test_oversized_images_are_refused(settings, headers, create_product, tmp_path):
    from web import create_app

    app = create_app(replace(settings, STORAGE_LOCAL_DIR=str(tmp_path), IMAGE_MAX_BYTES=1000))
    try:
        product = create_product("Mug")
        big = png_bytes(size=(300, 300), colour=(1, 2, 3))
        noisy = Image.frombytes("RGB", (300, 300), bytes(range(256)) * 1055)
        buffer = io.BytesIO()
        noisy.save(buffer, "PNG")
        response = upload(app.test_client(), headers["staff"], product["id"], buffer.getvalue() + big, "image/png")
        assert response.status_code == 400 and "larger than 1000 bytes" in response.get_json()["errors"]["file"][0]
    finally:
        app.extensions["shop"].db.dispose()


def test_customers_cannot_upload(client, headers, create_product):
    product = create_product("Mug")
    assert upload(client, headers["customer"], product["id"], png_bytes(), "image/png").status_code == 403
    assert upload(client, headers["guest"], product["id"], png_bytes(), "image/png").status_code == 401


def test_listing_and_search_items_are_the_detail_pages_exactly(local_app, headers, create_product, create_category):
    """Pages are loaded in one query without ORM objects: each item must still be the product's detail body."""
    from tests.catalog.conftest import index_now, variant

    client = local_app.test_client()
    category = create_category("Kitchen")
    full = create_product("Zinc kettle", description="Boils", categoryId=category["id"],
                          attributes={"colour": "grey", "litres": 1.5, "tags": ["a", "b"]},
                          variants=[variant("ZB", "12.5", stock=2), variant("ZA", "0.1000", stock=0)])
    bare = create_product("Zinc plain")
    assert upload(client, headers["staff"], full["id"], png_bytes(), "image/png").status_code == 201
    index_now(full["id"], bare["id"])
    details = {p["id"]: client.get(f"{API}/products/{p['id']}", headers=headers["customer"]).get_json()
               for p in (full, bare)}
    assert [v["sku"] for v in details[full["id"]]["variants"]] == ["ZA", "ZB"] and details[full["id"]]["images"]
    for query in ("sort=name", "q=zinc", f"category={category['id']}&sort=price"):
        items = client.get(f"{API}/products?{query}", headers=headers["customer"]).get_json()["items"]
        assert items, query
        for item in items:
            assert item == details[item["id"]] and list(item) == list(details[item["id"]]), query
