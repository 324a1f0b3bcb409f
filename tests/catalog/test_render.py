"""Uncached product pages rendered in front of Flask (web.catalog.render): the app's bytes and headers, for less.

A page the shared cache does not hold (every page of a staff reader, a guest's miss) is rendered by the
layer in front of the app from PostgreSQL's JSON; each test compares its answer with the app's own answer
to the same request, and the JSON with ProductSchema's dump, the documented contract.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import event, text

from models.catalog import actions
from models.catalog.listing import page_items
from models.catalog.tables import ProductImage
from models.db import Database
from tests.catalog.conftest import API, index_now, variant
from tests.catalog.test_cache import _closed_port
from tests.catalog.test_fast import _by_the_app, _steady
from tests.catalog.test_request_overheads import _count_commands
from web.catalog.render import parse_listing
from web.catalog.schemas import ProductSchema
from web.limits import limiter


def _dumped(app, product_id: str) -> dict:
    """ProductSchema's dump of the ORM product, image URLs as the app gives them."""
    storage = app.extensions["shop"].storage
    with app.app_context(), app.extensions["shop"].db.session() as session:
        orm = actions.get_product(session, uuid.UUID(product_id))
        for image in orm.images:
            image.url = storage.url(image.storage_key)
        return ProductSchema().dump(orm)


def test_postgresqls_json_is_the_schema_dump_byte_for_byte(app, create_product, create_category):
    kitchen = create_category("Küche")
    odd = create_product("Théière \u00e9\u6f22\U0001f375 \"quoted\" \\ tab\there del\x7f",
                         description="line\nbreak", categoryId=kitchen["id"],
                         attributes={"colour": "rouge", "litres": 1.5, "big": 10**20,
                                     "nested": {"a": [1, None, True]}, "ünï": "\u2028"},
                         variants=[variant("Z-1", "0"), variant("A-1", "100"), variant("M-1", "12.5"),
                                   variant("B-1", "7.1234"), variant("C-1", "9999999999999999.9999"),
                                   variant("D-1", "0.10")])
    bare = create_product("Nothing else")
    db = app.extensions["shop"].db
    with db.session() as session:
        session.add_all([ProductImage(product_id=uuid.UUID(odd["id"]), content_type="image/png", alt_text=alt,
                                      storage_key=f"products/{odd['id']}/{n}.png", position=n)
                         for n, alt in ((1, "back"), (0, None))])
        # A whole second: no fraction is written, as Python's isoformat writes none.
        session.execute(text("UPDATE products SET created_at = date_trunc('second', created_at) WHERE id = :id"),
                        {"id": bare["id"]})
    storage = app.extensions["shop"].storage
    for pid in (odd["id"], bare["id"]):
        expected = _dumped(app, pid)
        with db.reads.connect() as connection:
            [item] = page_items(connection, [uuid.UUID(pid)], storage.url)
        assert item == expected
        assert json.dumps(item) == json.dumps(expected)  # the same keys in the same order: the same bytes
    assert [v["price"] for v in _dumped(app, odd["id"])["variants"]] == [
        "100.00", "7.1234", "9999999999999999.9999", "0.10", "12.50", "0.00"]
    assert "." not in _dumped(app, bare["id"])["createdAt"]


def test_a_page_keeps_the_order_of_its_ids_and_leaves_out_missing_ones(app, create_product):
    first, second = create_product("First"), create_product("Second")
    with app.extensions["shop"].db.reads.connect() as connection:
        items = page_items(connection, [uuid.UUID(second["id"]), uuid.uuid4(), uuid.UUID(first["id"])], str)
    assert [item["name"] for item in items] == ["Second", "First"]


@pytest.fixture
def shelf(create_product, create_category):
    """Products to list and search, in a category tree."""
    root = create_category("Tableware")
    leaf = create_category("Cups", root["id"])
    made = [create_product(name, categoryId=category, variants=[variant(f"S-{n}", price, stock)])
            for n, (name, category, price, stock) in enumerate([
                ("Blue teacup", leaf["id"], "4.50", 3), ("Green teacup", leaf["id"], "6", 0),
                ("Tea tray", root["id"], "19.99", 1), ("Théière en fonte", root["id"], "35.1", 2),
                ("Water jug", None, "12.00", 5), ("Teapot lid", leaf["id"], "2.25", 1)])]
    index_now(*[p["id"] for p in made])
    return {"root": root["id"], "leaf": leaf["id"], "products": made}


def _queries(shelf) -> list[str]:
    return [f"/{shelf['products'][0]['id']}", "", "?limit=2", "?sort=name", "?sort=-price&limit=3",
            "?sort=oldest", f"?category={shelf['root']}", f"?category={shelf['leaf']}&sort=price",
            "?minPrice=3&maxPrice=20&inStock=true&sort=price", "?inStock=false&minPrice=5.5",
            "?q=tea", "?q=teacup&limit=1", "?q=th%C3%A9i%C3%A8re", "?q=nothing+matches+this", "?q=te",
            f"?q=tea&category={shelf['leaf']}&inStock=true", "?q=tea&sort=relevance", "?q=%22tea+tray%22",
            "?q=tea+-lid", "?minPrice=1000"]


def _follow(client, path: str, headers: dict) -> list[str]:
    """The path and those of the pages after it (by their cursors)."""
    found, body = [path], client.get(f"{API}/products{path}", headers=headers).get_json()
    while body.get("nextCursor"):
        glue = "&" if "?" in found[-1] else "?"
        found.append(f"{path}{glue}cursor={body['nextCursor']}")
        body = client.get(f"{API}/products{found[-1]}", headers=headers).get_json()
    return found


def test_uncached_pages_are_rendered_in_front_with_the_apps_bytes_and_headers(app, client, headers, shelf, passes):
    paths = [p for query in _queries(shelf) for p in
             ([query] if query.startswith("/") else _follow(client, query if "limit" in query else
                                                             query + ("&" if "?" in query else "?") + "limit=2",
                                                             headers["staff"]))]
    assert any("cursor=" in p for p in paths) and len(paths) > 25
    for path in paths:
        url = f"{API}/products{path}"
        passes.count = 0
        fast = client.get(url, headers=headers["staff"])
        assert passes.count == 0, path  # rendered in front of the app
        slow = _by_the_app(app, client, url, headers["staff"])
        assert fast.status_code == slow.status_code == 200, (path, fast.get_json())
        assert fast.data == slow.data, path
        assert _steady(fast) == _steady(slow), path
        assert [name for name, _ in fast.headers.items()] == [name for name, _ in slow.headers.items()]
    assert client.get(f"{API}/products?q=nothing+matches+this", headers=headers["staff"]).get_json() == {
        "items": [], "nextCursor": None}


@pytest.mark.parametrize("who", ["guest", "customer"])
def test_a_miss_is_rendered_in_front_cached_as_the_app_caches_it_and_counted_once(app, client, headers, shelf,
                                                                                   passes, who):
    cache = app.extensions["shop"].catalog_cache
    calls: list = []
    _count_commands(limiter.storage.get_connection(), calls)
    for query in _queries(shelf):
        url = f"{API}/products{query}"
        cache.invalidate([shelf["products"][0]["id"]])
        by_the_app = _by_the_app(app, client, url, headers[who])  # the app's own render (and cache write)
        cache.invalidate([shelf["products"][0]["id"]])
        passes.count, calls[:] = 0, []
        miss = client.get(url, headers=headers[who])
        assert passes.count == 0 and calls.count("EVALSHA") == 1, query  # rendered here, one trip
        hit = client.get(url, headers=headers[who])
        assert passes.count == 0, query  # and written where the next request finds it
        assert miss.data == hit.data == by_the_app.data, query
        assert _steady(miss) == _steady(hit) == _steady(by_the_app), query
        assert int(miss.headers["X-RateLimit-Remaining"]) == int(hit.headers["X-RateLimit-Remaining"]) + 1


@pytest.mark.parametrize("query, status", [
    ("?limit=007", 200), ("?inStock=True", 200), ("?inStock=1", 200), ("?extra=1", 200), ("?minPrice=%201.5", 200),
    ("?limit=1&limit=2", 200), ("?minPrice=1e1", 200), ("?limit=0", 422), ("?limit=101", 422), ("?limit=x", 422),
    ("?sort=relevance", 422), ("?q=tea&sort=name", 422), ("?minPrice=5&maxPrice=1", 422), ("?q=%20", 422),
    ("?sort=cheapest", 422), ("?minPrice=1.23456", 422), ("?cursor=forged.cursor", 400), ("?cursor=", 200),
    (f"?category={uuid.uuid4()}", 400), ("?q=" + "a" * 201, 422), ("?inStock=maybe", 422),
])
def test_queries_only_the_app_reads_are_answered_by_it_and_counted_once(app, client, headers, shelf, passes,
                                                                        query, status):
    url = f"{API}/products{query}"
    calls: list = []
    _count_commands(limiter.storage.get_connection(), calls)
    for who in ("staff", "guest"):
        passes.count, calls[:] = 0, []
        answer = client.get(url, headers=headers[who])
        assert passes.count == 1 and calls.count("EVALSHA") == 1, (who, query)
        slow = _by_the_app(app, client, url, headers[who])
        assert answer.status_code == slow.status_code == status, (who, query, answer.get_json())
        if status != 200:
            assert answer.get_json() == slow.get_json()


def test_the_plain_form_of_each_argument_is_read_as_the_schema_reads_it():
    from web.catalog.schemas import ProductQuerySchema

    schema = ProductQuerySchema()
    for pairs in ([("q", "tea pot"), ("limit", "100")],
                  [("minPrice", "0"), ("maxPrice", "12.3456"), ("inStock", "true")],
                  [("sort", "-price"), ("category", str(uuid.uuid4())), ("cursor", "abc.def")], []):
        parsed, loaded = parse_listing(pairs), schema.load(dict(pairs))
        assert parsed is not None
        assert (parsed.q, parsed.filters.category_id, parsed.filters.min_price, parsed.filters.max_price,
                parsed.filters.in_stock, parsed.sort, parsed.limit, parsed.cursor) == (
            loaded.get("q"), loaded.get("category"), loaded.get("min_price"), loaded.get("max_price"),
            loaded["in_stock"], loaded.get("sort"), loaded["limit"], loaded.get("cursor"))


def test_a_database_outage_is_answered_by_the_app_after_one_attempt(app, client, headers, create_product, passes):
    product = create_product("Mug", variants=[variant("M", "5.00")])
    path = f"{API}/products/{product['id']}"
    assert client.get(path).status_code == 200  # a guest's render: the snapshot
    app.extensions["shop"].catalog_cache.invalidate([product["id"]])
    runtime = app.extensions["shop"]
    runtime.db.dispose()
    runtime.db = Database(f"postgresql+psycopg2://postgres@127.0.0.1:{_closed_port()}/shop", connect_timeout=1)
    attempts: list = []
    event.listen(runtime.db.reads, "do_connect", lambda *args: attempts.append(1))
    passes.count = 0
    stale = client.get(path)
    assert stale.status_code == 200 and stale.headers["X-Catalog-Stale"] == "true"
    assert stale.get_json()["name"] == "Mug"
    staff = client.get(path, headers=headers["staff"])
    assert staff.status_code == 503 and staff.get_json()["code"] == 503 and staff.headers["Retry-After"]
    assert passes.count == 2 and len(attempts) == 2  # one connection attempt each, by the layer


@pytest.mark.parametrize("pool", ["engine", "reads"])
def test_each_pool_keeps_the_connections_a_burst_of_requests_opened(app, pool):
    """A gthread worker runs WEB_THREADS requests at once, more than the pool size: the connections opened for
    such a burst stay open for the next one (a new connection is a new server process, its statements
    prepared again), in the pool of transactions (checkout, payment) as in the catalog's reads; and no more
    are opened than three times the pool size (the old pool and overflow together)."""
    from contextlib import ExitStack

    engine, settings = getattr(app.extensions["shop"].db, pool), app.extensions["shop"].settings
    burst = max(settings.WEB_THREADS, settings.DATABASE_POOL_SIZE + 1)
    opened: list = []
    event.listen(engine, "connect", lambda *args: opened.append(1))
    for _ in range(3):
        with ExitStack() as stack:
            for _ in range(burst):
                stack.enter_context(engine.connect()).exec_driver_sql("SELECT 1")
    assert len(opened) <= burst  # the first burst's, none after
    assert engine.pool.checkedin() >= burst  # all kept, idle
