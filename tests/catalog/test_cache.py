"""Cached public reads: ETag and 304, invalidation from web and from tasks, and the outage snapshot."""

from __future__ import annotations

import socket

from sqlalchemy import text

from models.catalog.indexing import queue_indexing
from models.db import Database
from tests.catalog.conftest import API, variant
from tests.helpers import wait_for


def _sql(app, statement: str, **params) -> None:
    with app.extensions["shop"].db.session() as session:
        session.execute(text(statement), params)


def test_guests_read_from_the_cache_with_etag_and_304(app, client, headers, create_product):
    product = create_product("Mug", variants=[variant("M", "5.00")])
    path = f"{API}/products/{product['id']}"
    first = client.get(path)
    assert first.headers["Cache-Control"].startswith("public, max-age=") and first.headers["ETag"]
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == first.headers["ETag"]
    # Changed behind the app's back (no invalidation): guests and customers keep the cached page, staff do not.
    _sql(app, "UPDATE products SET name = 'Changed' WHERE id = :id", id=product["id"])
    assert client.get(path).get_json()["name"] == "Mug"
    signed_in = client.get(path, headers=headers["customer"])
    assert signed_in.get_json()["name"] == "Mug" and signed_in.headers["Cache-Control"] == "private, no-cache"
    assert client.get(path, headers=headers["staff"]).get_json()["name"] == "Changed"
    listing = client.get(f"{API}/products")
    assert client.get(f"{API}/products", headers={"If-None-Match": listing.headers["ETag"]}).status_code == 304


def test_a_web_change_invalidates_detail_and_listing(client, headers, create_product):
    product = create_product("Mug", variants=[variant("M", "5.00")])
    path = f"{API}/products/{product['id']}"
    assert client.get(path).get_json()["name"] == "Mug"
    assert [p["name"] for p in client.get(f"{API}/products").get_json()["items"]] == ["Mug"]
    client.patch(path, json={"name": "Cup"}, headers=headers["staff"])
    assert client.get(path).get_json()["name"] == "Cup"
    assert [p["name"] for p in client.get(f"{API}/products").get_json()["items"]] == ["Cup"]


def test_a_change_made_by_a_task_invalidates_the_cache(app, client, worker, create_product):
    """What orders and imports do: change rows in SQL, call queue_indexing; the worker invalidates."""
    product = create_product("Mug", variants=[variant("M", "5.00", stock=4)])
    path = f"{API}/products/{product['id']}"
    # The creation's own indexing task is done once the product is searchable: later bumps are the update's.
    wait_for(lambda: client.get(f"{API}/products?q=mug").get_json()["items"], message="indexing")
    assert client.get(path).get_json()["variants"][0]["stock"] == 4
    assert client.get(f"{API}/products?inStock=true").get_json()["items"]
    with app.extensions["shop"].db.session() as session:
        session.execute(text("UPDATE product_variants SET stock = 0 WHERE sku = 'M'"))
        queue_indexing(session, [product["id"]])
    wait_for(lambda: client.get(path).get_json()["variants"][0]["stock"] == 0
             and client.get(f"{API}/products?inStock=true").get_json()["items"] == [], timeout=10,
             message="the cached detail and listing pages to be invalidated by the task")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_during_a_database_outage_reads_come_from_the_snapshot_and_writes_get_503(app, client, headers,
                                                                                create_product):
    product = create_product("Mug", variants=[variant("M", "5.00")])
    never_read = create_product("Bowl")
    path = f"{API}/products/{product['id']}"
    assert client.get(path).status_code == 200
    assert client.get(f"{API}/products?limit=5").status_code == 200
    app.extensions["catalog"].cache.invalidate([product["id"]])  # the fresh cache is gone; the snapshot stays

    runtime = app.extensions["shop"]
    runtime.db.dispose()
    runtime.db = Database(f"postgresql+psycopg2://postgres@127.0.0.1:{_closed_port()}/shop", connect_timeout=1)

    detail = client.get(path)
    assert detail.status_code == 200 and detail.headers["X-Catalog-Stale"] == "true"
    assert detail.get_json()["name"] == "Mug" and detail.headers["Cache-Control"] == "no-cache"
    listing = client.get(f"{API}/products?limit=5")
    assert listing.status_code == 200 and listing.headers["X-Catalog-Stale"] == "true"
    assert {p["name"] for p in listing.get_json()["items"]} == {"Mug", "Bowl"}

    unknown = client.get(f"{API}/products/{never_read['id']}")
    # flask-limiter raises Retry-After to the rate-limit window's reset when that is later
    assert unknown.status_code == 503 and int(unknown.headers["Retry-After"]) >= 30
    write = client.patch(path, json={"name": "Cup"}, headers=headers["staff"])
    assert write.status_code == 503 and int(write.headers["Retry-After"]) >= 30
    assert write.get_json()["code"] == 503
    created = client.post(f"{API}/products", json={"name": "New"}, headers=headers["admin"])
    assert created.status_code == 503 and created.headers["Retry-After"]


def test_a_products_version_key_expires_and_its_versions_never_repeat(app, client, create_product):
    """Invalidation leaves no key without expiry behind (an import of a million products wrote a million),
    and a version key that expired and comes back never holds a version a page was written under before."""
    cache = app.extensions["shop"].catalog_cache
    product = create_product("Mug", variants=[variant("M", "5.00")])
    path = f"{API}/products/{product['id']}"
    version_key = cache.detail_keys(product["id"])[0]
    cache.invalidate([product["id"]])
    assert 0 < cache.redis.ttl(version_key) <= cache.ttl + 300
    assert cache.ttl < cache.version_ttl  # the key outlives every page written under the version before it
    seen = {cache.redis.get(version_key)}
    assert client.get(path).get_json()["name"] == "Mug"  # cached under this version
    _sql(app, "UPDATE products SET name = 'Cup' WHERE id = :id", id=product["id"])
    cache.redis.delete(version_key)  # as if it had expired: the version reads "0", a version never written to
    assert client.get(path).get_json()["name"] == "Cup"
    for _ in range(3):
        cache.invalidate([product["id"]])
        seen.add(cache.redis.get(version_key))
    assert len(seen) == 4 and b"0" not in seen
    assert cache.redis.get(cache.list_keys("")[0]) == sorted(seen, key=int)[-1]  # the generation itself


def test_invalidating_a_deleted_product_drops_its_snapshot(app, client, create_product):
    cache = app.extensions["shop"].catalog_cache
    product = create_product("Mug", variants=[variant("M", "5.00")])
    assert client.get(f"{API}/products/{product['id']}").status_code == 200
    assert cache.snapshot_detail(product["id"])
    cache.invalidate([], deleted=[product["id"]])
    assert cache.snapshot_detail(product["id"]) is None
