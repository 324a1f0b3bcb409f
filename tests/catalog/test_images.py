"""Image uploads: the real type checked from the bytes in the request, limits enforced, stored locally or in S3 by a
worker, retried while storage fails; deletes remove the file through a worker."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace

import pytest
from PIL import Image

from sqlalchemy import text

from tests.catalog.conftest import API
from tests.helpers import wait_for


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


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def image_worker(tmp_path_factory, store_dir):
    """A real worker storing into the same local folder the app serves."""
    from tests.conftest import start_worker

    process = start_worker(tmp_path_factory.mktemp("worker"), STORAGE_BACKEND="local",
                           STORAGE_LOCAL_DIR=str(store_dir))
    yield process
    process.stop()


@pytest.fixture
def local_app(settings, store_dir):
    from web import create_app

    app = create_app(replace(settings, STORAGE_BACKEND="local", STORAGE_LOCAL_DIR=str(store_dir)))
    yield app
    app.extensions["shop"].db.dispose()


def listed(client, product_id) -> list[dict]:
    return client.get(f"{API}/products/{product_id}/images").get_json()["items"]


def staged_count(app) -> int:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM staged_images")).scalar()


def test_an_upload_is_stored_by_a_worker_served_under_media_and_deleted_by_a_worker(
        image_worker, local_app, headers, create_product, store_dir):
    client = local_app.test_client()
    product = create_product("Mug")
    response = upload(client, headers["staff"], product["id"], png_bytes(), "image/png")
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert accepted["status"] == "processing" and accepted["contentType"] == "image/png"
    [image] = wait_for(lambda: listed(client, product["id"]), message="the image to be stored")
    assert image["id"] == accepted["id"] and image["altText"] == "A red mug"
    assert image["url"] == f"/media/products/{product['id']}/{image['id']}.png"
    served = client.get(image["url"])
    assert served.status_code == 200 and served.data == png_bytes() and served.mimetype == "image/png"
    assert "immutable" in served.headers["Cache-Control"]
    assert staged_count(local_app) == 0

    detail = client.get(f"{API}/products/{product['id']}").get_json()
    assert [i["url"] for i in detail["images"]] == [image["url"]]
    assert client.get(f"{API}/products/{product['id']}/images").get_json()["nextCursor"] is None
    assert client.delete(f"{API}/products/{product['id']}/images/{image['id']}",
                         headers=headers["staff"]).status_code == 204
    assert client.get(f"{API}/products/{product['id']}").get_json()["images"] == []
    wait_for(lambda: client.get(image["url"]).status_code == 404, message="the worker to delete the file")
    assert not list((store_dir / "products" / product["id"]).iterdir())


def test_a_storage_failure_is_retried_and_leaves_nothing_half_written(image_worker, local_app, headers,
                                                                     create_product, store_dir):
    client = local_app.test_client()
    product = create_product("Mug")
    blocker = store_dir / "products" / product["id"]  # a file where the product's folder must go
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    response = upload(client, headers["staff"], product["id"], png_bytes(), "image/png")
    assert response.status_code == 202
    wait_for(lambda: f"{response.get_json()['id']}" in image_worker.log() and "Retry in" in image_worker.log(),
             message="the worker to retry")
    assert listed(client, product["id"]) == [] and staged_count(local_app) == 1  # nothing lost, nothing shown
    blocker.unlink()
    [image] = wait_for(lambda: listed(client, product["id"]), message="the retried store")
    assert (store_dir / "products" / product["id"] / f"{image['id']}.png").read_bytes() == png_bytes()
    assert [p.name for p in blocker.iterdir()] == [f"{image['id']}.png"]  # no temporary file left behind
    assert staged_count(local_app) == 0


def test_deleting_a_product_has_a_worker_delete_its_files(image_worker, local_app, headers, create_product,
                                                          store_dir):
    client = local_app.test_client()
    product = create_product("Mug")
    for _ in range(2):
        assert upload(client, headers["staff"], product["id"], png_bytes(), "image/png").status_code == 202
    wait_for(lambda: len(listed(client, product["id"])) == 2, message="both images stored")
    assert client.delete(f"{API}/products/{product['id']}", headers=headers["admin"]).status_code == 204
    wait_for(lambda: not list((store_dir / "products" / product["id"]).iterdir()), message="the files deleted")


def test_media_refuses_keys_that_leave_the_store(local_app):
    client = local_app.test_client()
    assert client.get("/media/../settings.py").status_code == 404
    assert client.get("/media/products/%2e%2e/%2e%2e/settings.py").status_code == 404


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
