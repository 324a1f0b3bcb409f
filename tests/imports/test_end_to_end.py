"""Files dropped in a real SFTP server's and an S3-compatible server's inbox, picked up by beat and a real
worker; uploads and exports through the API."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from defusedxml.ElementTree import fromstring

from imports.inboxes import open_storage
from settings import Settings
from tests.conftest import start_beat, start_worker
from tests.helpers import bearer, mails, make_user, wait_for
from tests.imports.conftest import DATA, rows, scalar

BUCKET = "shop-imports-e2e"


@pytest.fixture(scope="module")
def env(sshd_twin, s3_twin, tmp_path_factory):
    s3_twin.bucket(BUCKET)
    storage = tmp_path_factory.mktemp("storage")
    return {
        "IMPORT_INBOXES": f"{sshd_twin.url(sshd_twin.folder_for('e2e-inbox'))},s3://{BUCKET}/inbox",
        "EXPORT_DESTINATIONS": f"{sshd_twin.url(sshd_twin.folder_for('e2e-exports'))},s3://{BUCKET}/exports",
        **sshd_twin.env(),
        "S3_ENDPOINT_URL": s3_twin.endpoint, "S3_ACCESS_KEY_ID": "test-key", "S3_SECRET_ACCESS_KEY": "test-secret",
        "STORAGE_LOCAL_DIR": str(storage), "IMPORT_POLL_INTERVAL": "1", "IMPORT_REPORT_EMAIL": "merch@example.com",
        "IMPORT_CHUNK_ROWS": "2",
    }


@pytest.fixture(scope="module")
def e2e_settings(env) -> Settings:
    return Settings.from_env({**os.environ, **env})


@pytest.fixture(scope="module")
def processes(env, tmp_path_factory):
    """A worker and beat with the inboxes configured."""
    folder = tmp_path_factory.mktemp("e2e")
    worker = start_worker(folder, **env)
    beat = start_beat(folder, **env)
    yield worker, beat
    beat.stop()
    worker.stop()


@pytest.fixture
def e2e_app(e2e_settings):
    from web import create_app

    app = create_app(e2e_settings)
    yield app
    app.extensions["shop"].db.dispose()


@pytest.fixture
def db(e2e_app):
    return e2e_app.extensions["shop"].db


def inbox(settings: Settings, index: int):
    return open_storage(settings, settings.IMPORT_INBOXES.split(",")[index])


def wait_for_jobs(db, count: int, timeout: float = 60) -> list[tuple]:
    done = wait_for(lambda: (found := rows(db, "SELECT filename, status, rows_imported, rows_failed FROM import_jobs "
                                              "WHERE finished_at IS NOT NULL ORDER BY filename")) and
                    len(found) >= count and found, timeout=timeout, interval=0.2, message=f"{count} finished imports")
    return done


def test_sftp_inbox_files_are_imported_moved_and_reported(processes, e2e_settings, db, mail_dir):
    sftp = inbox(e2e_settings, 0)
    sftp.put("catalog.csv", (DATA / "catalog.csv").read_bytes())
    sftp.put("xxe.xml", (DATA / "bad" / "xxe.xml").read_bytes())  # the worker goes on after a hostile file
    assert wait_for_jobs(db, 2) == [("catalog.csv", "succeeded", 5, 0), ("xxe.xml", "failed", 0, 0)]
    keys = {item.key for item in sftp.list()}
    assert {"processed/catalog.csv", "failed/xxe.xml", "errors/xxe.xml.csv"} <= keys
    assert "DTD or entities" in sftp.read("errors/xxe.xml.csv").decode()
    assert scalar(db, "SELECT count(*) FROM product_variants") == 5
    subjects = wait_for(lambda: len(found := mails(mail_dir, "merch@example.com")) == 2 and found, timeout=20)
    assert sorted(m["Subject"] for m in subjects) == ["Catalog import catalog.csv: succeeded",
                                                      "Catalog import xxe.xml: failed"]
    sftp.close()


def test_s3_inbox_and_the_duplicate_file_skip(processes, e2e_settings, db):
    s3 = inbox(e2e_settings, 1)
    s3.put("catalog.json", (DATA / "catalog.json").read_bytes())
    assert wait_for_jobs(db, 1) == [("catalog.json", "succeeded", 2, 0)]
    s3.put("again.json", (DATA / "catalog.json").read_bytes())
    assert wait_for_jobs(db, 2)[0] == ("again.json", "duplicate", 0, 0)
    keys = {item.key for item in s3.list()}
    assert {"processed/catalog.json", "failed/again.json", "errors/again.json.csv"} <= keys
    assert "already imported" in s3.read("errors/again.json.csv").decode()


def test_upload_through_the_api(processes, e2e_app, db):
    client = e2e_app.test_client()
    with db.session() as session:
        admin, staff = make_user(session, "admin"), make_user(session, "staff")
    headers = bearer(e2e_app, admin)
    with (DATA / "bad" / "negative_price.csv").open("rb") as upload:
        response = client.post("/api/v1/imports", headers=headers, data={"file": (upload, "prices.csv")})
    assert response.status_code == 202 and response.json["status"] == "queued"
    job_url = f"/api/v1/imports/{response.json['id']}"
    job = wait_for(lambda: (body := client.get(job_url, headers=headers).json)["status"] not in ("queued", "running")
                   and body, timeout=30, interval=0.2)
    assert (job["status"], job["rowsTotal"], job["rowsImported"], job["rowsFailed"], job["progress"]) == (
        "partially_failed", 2, 1, 1, 1.0)
    assert job["errors"] == [{"row": 2, "column": "price", "value": "-5.00", "message": "price must not be negative"}]
    assert job["durationSeconds"] >= 0 and job["finishedAt"] and job["format"] == "csv"
    report = client.get(job["errorReportUrl"], headers=headers)
    assert report.mimetype == "text/csv" and report.text.splitlines()[1] == "2,price,'-5.00,price must not be negative"
    listed = client.get("/api/v1/imports?limit=1", headers=headers).json
    assert [item["id"] for item in listed["items"]] == [response.json["id"]] and listed["nextCursor"] is None
    # the uploader gets the summary
    assert scalar(db, "SELECT to_address FROM email_messages") == admin.email
    # who may, and bad requests
    assert client.post("/api/v1/imports", json={"source": "x"}).status_code == 401
    assert client.get(job_url, headers=bearer(e2e_app, staff)).status_code == 403
    assert client.get(job_url, headers=bearer(e2e_app, admin, mfa=False)).status_code == 403
    missing = client.post("/api/v1/imports", headers=headers, data={"format": "csv"})
    assert missing.status_code == 422 and "file" in missing.json["errors"]["form"]
    outside = client.post("/api/v1/imports", headers=headers, json={"source": "s3://elsewhere/x.csv"})
    assert outside.status_code == 400 and "source" in outside.json["errors"]
    assert client.post("/api/v1/imports", headers=headers, json={}).status_code == 422


def test_exports_land_in_sftp_and_s3_and_read_back(processes, e2e_app, e2e_settings, db):
    s3 = inbox(e2e_settings, 1)
    s3.put("formula.csv", (DATA / "bad" / "formula_injection.csv").read_bytes())
    s3.put("catalog.csv", (DATA / "catalog.csv").read_bytes())
    wait_for_jobs(db, 2)
    client = e2e_app.test_client()
    with db.session() as session:
        headers = bearer(e2e_app, make_user(session, "admin"))
    sftp_destination, s3_destination = e2e_settings.EXPORT_DESTINATIONS.split(",")
    started = {}
    for destination, kind, fmt in ((sftp_destination, "products", "csv"), (s3_destination, "products", "xml"),
                                   (s3_destination, "orders", "json")):
        response = client.post("/api/v1/exports", headers=headers,
                               json={"kind": kind, "format": fmt, "destination": destination})
        assert response.status_code == 202, response.json
        started[fmt] = response.json["id"]
    done = {fmt: wait_for(lambda i=export_id: (body := client.get(f"/api/v1/exports/{i}", headers=headers).json)
                          ["status"] in ("succeeded", "failed") and body, timeout=30, interval=0.2)
            for fmt, export_id in started.items()}
    assert {fmt: (body["status"], body["rows"]) for fmt, body in done.items()} == {
        "csv": ("succeeded", 6), "xml": ("succeeded", 6), "json": ("succeeded", 0)}

    sftp_store = open_storage(e2e_settings, sftp_destination)
    [csv_key] = [item.key for item in sftp_store.list() if item.key.endswith(".csv")]
    exported = list(csv.DictReader(io.StringIO(sftp_store.read(csv_key).decode())))
    sftp_store.close()
    by_sku = {row["sku"]: row for row in exported}
    assert by_sku["KN-CHEF-24"]["price"] == "59.90" and by_sku["KN-CHEF-24"]["attributes"] == "size=24cm;steel=VG10"
    formula = next(row for row in exported if row["product_handle"] == "a")
    assert formula["sku"].startswith("'=HYPERLINK") and formula["product_name"] == "'=1+2"
    s3_store = open_storage(e2e_settings, s3_destination)
    xml_key = next(item.key for item in s3_store.list() if item.key.endswith(".xml"))
    items = fromstring(s3_store.read(xml_key)).findall("item")
    assert len(items) == 6 and {item.findtext("sku") for item in items} == {
        sku.removeprefix("'") for sku in by_sku}
    json_key = next(item.key for item in s3_store.list() if item.key.endswith(".json"))
    assert json.loads(s3_store.read(json_key)) == []
    assert done["csv"]["location"].startswith("sftp://") and done["xml"]["location"]
    refused = client.post("/api/v1/exports", headers=headers,
                          json={"kind": "products", "format": "csv", "destination": "s3://elsewhere/"})
    assert refused.status_code == 422 and "destination" in refused.json["errors"]["json"]
