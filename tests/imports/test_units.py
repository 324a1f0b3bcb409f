"""Image fetching's refusals, inbox locations, exports' neutralising, and the beat entries."""

import io
import threading
import uuid
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image
from sqlalchemy import text

from imports import exports, images, inboxes
from models.errors import Forbidden
from models.users.permissions import SYSTEM, Actor
from models.users.tables import Role
from scheduler import beat_schedule
from tests.helpers import make_user
from tests.imports.conftest import rows


def picture(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (10, 20, 30)).save(buffer, kind)
    return buffer.getvalue()


class Images(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (http.server's name)
        body, kind = {"/small.png": (picture("PNG"), "image/png"), "/big.png": (b"x" * 5000, "image/png"),
                      "/fake.png": (b"\x89PNG" + b"x" * 100, "image/png"),
                      "/jpeg-said-png.png": (picture("JPEG"), "image/png"),
                      "/page.html": (b"<html>", "text/html")}.get(self.path, (b"", "text/plain"))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def image_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_image_fetching_limits_size_and_type(image_server, database, settings, tmp_path):
    assert images.download(f"{image_server}/small.png", 1000, 5, allow_private=True)[1] == "image/png"
    with pytest.raises(images.ImageRefused, match="larger than"):
        images.download(f"{image_server}/big.png", 1000, 5, allow_private=True)
    with pytest.raises(images.ImageRefused, match="not an image"):
        images.download(f"{image_server}/page.html", 1000, 5, allow_private=True)
    with pytest.raises(images.ImageRefused, match="non-public"):
        images.download(f"{image_server}/small.png", 1000, 5)
    with database.engine.begin() as conn:
        product = conn.exec_driver_sql("INSERT INTO products (handle, name) VALUES ('p', 'P') RETURNING id").scalar()
    local = replace(settings, STORAGE_LOCAL_DIR=str(tmp_path), IMPORT_IMAGE_ALLOW_PRIVATE=True,
                    IMPORT_IMAGE_MAX_BYTES=1000)
    urls = [f"{image_server}/{name}" for name in ("small.png", "big.png", "fake.png", "jpeg-said-png.png",
                                                  "small.png")]
    assert images.fetch_product_images(database, local, str(product), urls) == 1
    assert images.fetch_product_images(database, local, str(product), urls) == 0  # once only
    [(key, source)] = rows(database, "SELECT storage_key, source_url FROM product_images")
    assert source == urls[0] and (tmp_path / key).read_bytes() == picture("PNG")
    assert [str(p) for p in (tmp_path / "products").rglob("*") if p.is_file()] == [str(tmp_path / key)]
    # indexed like an upload: the search task is queued for the product
    queued = rows(database, "SELECT kwargs FROM outbox WHERE task = 'tasks.search.index_products'")
    assert [kwargs["product_ids"] for (kwargs,) in queued] == [[str(product)]]


def test_beat_polls_inboxes_and_exports_nightly(settings, database):
    schedule = beat_schedule(replace(settings, IMPORT_POLL_INTERVAL=7))
    assert schedule["imports-poll-inboxes"]["task"] == "tasks.imports.poll_inboxes"
    assert schedule["imports-poll-inboxes"]["schedule"].total_seconds() == 7
    assert schedule["exports-nightly"]["task"] == "tasks.imports.nightly_exports"
    assert exports.queue_nightly(database, settings) == 0
    assert exports.queue_nightly(database, replace(settings, EXPORT_DESTINATIONS="s3://b/x,/tmp/y")) == 2
    assert sorted(rows(database, "SELECT kind, format, destination FROM export_jobs")) == [
        ("orders", "csv", "s3://b/x"), ("products", "csv", "s3://b/x")]


def test_flask_imports_run_shows_progress_and_a_summary(app, database, tmp_path):
    from dataclasses import replace as replace_settings

    runtime = app.extensions["shop"]
    runtime.settings = replace_settings(runtime.settings, STORAGE_LOCAL_DIR=str(tmp_path), IMPORT_CHUNK_ROWS=2)
    from tests.imports.conftest import DATA

    result = app.test_cli_runner().invoke(args=["imports", "run", str(DATA / "bad" / "negative_price.csv")])
    assert result.exit_code == 0, result.output
    assert "importing negative_price.csv" in result.output
    assert "status         partially_failed" in result.output and "rows imported  1" in result.output
    assert "price must not be negative" in result.output
    assert rows(database, "SELECT sku FROM product_variants") == [("A-2",)]
    assert (tmp_path / "imports" / "errors").is_dir()
    failed = app.test_cli_runner().invoke(args=["imports", "run", str(DATA / "bad" / "xxe.xml")])
    assert failed.exit_code == 1 and "DTD or entities" in failed.output


def test_orders_export_one_row_per_line(database, settings, tmp_path):
    import csv
    import io

    with database.session() as session:
        user = make_user(session)
        order_id = session.execute(text(
            "INSERT INTO orders (user_id, currency, subtotal, total) VALUES (:u, 'EUR', 30, 34.5) RETURNING id"),
            {"u": user.id}).scalar()
        session.execute(text("INSERT INTO order_items (order_id, sku, product_name, unit_price, quantity, line_total) "
                             "VALUES (:o, 'A-1', '=cmd', 10, 3, 30)"), {"o": order_id})
        job = exports.create(session, SYSTEM, "orders", "csv", str(tmp_path))
    assert exports.run(database, settings, str(job.id)) == "succeeded"
    [written] = list(tmp_path.glob("orders-*.csv"))
    [line] = list(csv.DictReader(io.StringIO(written.read_text())))
    assert (line["order_id"], line["total"], line["sku"], line["quantity"], line["product_name"]) == (
        str(order_id), "34.50", "A-1", "3", "'=cmd")
    assert exports.run(database, settings, str(job.id)) == "already done"


@pytest.mark.parametrize("role, mfa", [(Role.CUSTOMER, True), (Role.STAFF, True), (Role.ADMIN, False)])
def test_exports_are_authorized_in_the_domain_as_well_as_at_the_door(database, tmp_path, role, mfa):
    actor = Actor(role=role, user_id=uuid.uuid4(), mfa=mfa)
    with database.session() as session:
        with pytest.raises(Forbidden):
            exports.create(session, actor, "products", "csv", str(tmp_path))
        with pytest.raises(Forbidden):
            exports.get(session, actor, uuid.uuid4())
    with database.session() as session:
        admin = make_user(session, "admin")
        job = exports.create(session, Actor(role=Role.ADMIN, user_id=admin.id, mfa=True), "products", "csv",
                             str(tmp_path))
        assert job.created_by == admin.id


class Watched:
    """The upload area's storage, noting how many transactions were open in the database at each `put`."""

    def __init__(self, inner, database):
        self.inner, self.database, self.open_transactions = inner, database, []

    def put(self, key, data, content_type=None):
        with self.database.engine.connect() as conn:
            self.open_transactions.append(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'")).scalar())
        self.inner.put(key, data, content_type)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def watched_upload_area(monkeypatch, local_settings, database):
    from imports import jobs

    watched = Watched(inboxes.open_storage(local_settings, inboxes.UPLOAD), database)
    monkeypatch.setattr(jobs.inboxes, "open_storage", lambda settings, location: watched)
    return watched


def test_an_upload_is_stored_with_no_transaction_open(watched_upload_area, local_settings, database, tmp_path):
    from imports import jobs

    job = jobs.start_upload(database, local_settings, SYSTEM, "feed.csv", io.BytesIO(b"sku\n"))
    assert watched_upload_area.open_transactions == [0]
    assert (tmp_path / "storage" / "imports" / f"{job.id}.csv").read_bytes() == b"sku\n"
    assert rows(database, "SELECT task FROM outbox") == [("tasks.imports.scan_file",)]


def test_an_upload_whose_job_cannot_be_recorded_is_removed_again(watched_upload_area, local_settings, database,
                                                                 tmp_path, monkeypatch):
    from imports import jobs

    def broken(*args, **kwargs):
        raise RuntimeError("database refused")

    monkeypatch.setattr(jobs, "enqueue", broken)
    with pytest.raises(RuntimeError):
        jobs.start_upload(database, local_settings, SYSTEM, "feed.csv", io.BytesIO(b"sku\n"))
    assert watched_upload_area.open_transactions == [0]
    assert list((tmp_path / "storage" / "imports").iterdir()) == []
    assert rows(database, "SELECT count(*) FROM import_jobs") == [(0,)]
