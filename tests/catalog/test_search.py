"""PostgreSQL full-text search: weights, web-search syntax, type-ahead prefixes, filters, and a real worker."""

from __future__ import annotations

import pytest

from models.catalog.listing import encode_cursor
from tests.catalog.conftest import API, index_now, variant
from tests.helpers import wait_for


def _search(client, query: str) -> list[str]:
    response = client.get(f"{API}/products?{query}")
    assert response.status_code == 200, response.get_json()
    return [p["name"] for p in response.get_json()["items"]]


@pytest.fixture
def catalog(create_product, create_category):
    kitchen = create_category("Kitchen")
    products = [
        create_product("Travel mug", description="Keeps coffee hot", variants=[variant("T", "20.00")]),
        create_product("Teapot", description="For tea, not for a travel mug lover", variants=[variant("P", "35.00")]),
        create_product("Kettle", description="Boils water", categoryId=kitchen["id"],
                       attributes={"colour": "travel green"}, variants=[variant("K", "45.00", stock=0)]),
        create_product("Espresso machine", description="Pressure brewing", variants=[variant("E", "300.00")]),
    ]
    index_now(*(p["id"] for p in products))
    return products


def test_name_matches_rank_above_description_and_category_matches(client, catalog):
    assert _search(client, "q=travel") == ["Travel mug", "Teapot", "Kettle"]


def test_web_search_syntax(client, catalog):
    assert _search(client, "q=travel -tea") == ["Travel mug", "Kettle"]
    assert _search(client, 'q="boils water"') == ["Kettle"]
    assert sorted(_search(client, "q=espresso or kettle")) == ["Espresso machine", "Kettle"]


def test_the_last_word_matches_as_a_prefix(client, catalog):
    assert _search(client, "q=espr") == ["Espresso machine"]
    assert _search(client, "q=kitch") == ["Kettle"]
    assert _search(client, "q=travel mu") == ["Travel mug", "Teapot"]
    assert _search(client, "q=travel mu ") == []  # a finished word is not a prefix


def test_search_takes_the_listing_filters_and_pages(client, catalog, create_category):
    assert _search(client, "q=travel&maxPrice=30") == ["Travel mug"]
    assert _search(client, "q=travel&inStock=true") == ["Travel mug", "Teapot"]
    first = client.get(f"{API}/products?q=travel&limit=2").get_json()
    assert [p["name"] for p in first["items"]] == ["Travel mug", "Teapot"] and first["nextCursor"]
    rest = client.get(f"{API}/products?q=travel&limit=2&cursor={first['nextCursor']}").get_json()
    assert [p["name"] for p in rest["items"]] == ["Kettle"] and rest["nextCursor"] is None
    assert client.get(f"{API}/products?q=travel&sort=price").status_code == 422
    forged = encode_cursor("relevance", ["x", "y", "z"])
    assert client.get(f"{API}/products?q=travel&cursor={forged}").status_code == 400


def test_category_renames_reach_the_search_text(client, headers, catalog):
    kettle = catalog[2]
    client.patch(f"{API}/categories/{kettle['categoryId']}", json={"name": "Appliances"}, headers=headers["staff"])
    index_now(kettle["id"])
    assert _search(client, "q=appliances") == ["Kettle"]


def test_an_update_becomes_searchable_through_a_real_worker(client, headers, worker, create_product):
    product = create_product("Plain bottle", variants=[variant("B", "9.00")])
    wait_for(lambda: _search(client, "q=bottle") == ["Plain bottle"], message="the new product indexed")
    client.patch(f"{API}/products/{product['id']}", json={"name": "Insulated flask"}, headers=headers["staff"])
    wait_for(lambda: _search(client, "q=insulated") == ["Insulated flask"], timeout=30,
             message="the update searchable")
    assert _search(client, "q=bottle") == []


def test_vectors_written_from_the_tables_equal_those_written_from_documents(app, catalog):
    from sqlalchemy import text

    from integrations.search.postgres import PostgresSearch
    from models.catalog.documents import documents_for

    engine = app.extensions["shop"].db.engine
    backend, ids = PostgresSearch(engine), [p["id"] for p in catalog]
    read = text("SELECT id::text, search_vector::text, name_vector::text FROM products "
                "WHERE id = ANY(CAST(:ids AS uuid[]))")
    with app.extensions["shop"].db.session() as session:
        backend.index(list(documents_for(session, ids).values()))
    with engine.connect() as conn:
        from_documents = sorted(conn.execute(read, {"ids": ids}).all())
    assert backend.index_ids([*ids, "00000000-0000-0000-0000-000000000000"]) == set(ids)
    with engine.connect() as conn:
        assert sorted(conn.execute(read, {"ids": ids}).all()) == from_documents
    assert "travel" in dict((row[0], row[1]) for row in from_documents)[catalog[2]["id"]]  # attribute value, weight C
def test_indexing_writes_only_rows_whose_vectors_changed_and_reports_every_row_found(app, catalog):
    """A stock change leaves a product's text as it was: its row is not rewritten (no new row version)."""
    from sqlalchemy import text

    from integrations.search.postgres import PostgresSearch

    engine = app.extensions["shop"].db.engine
    backend, ids = PostgresSearch(engine), [p["id"] for p in catalog]
    versions = text("SELECT id::text, xmin::text, ctid::text, name_vector::text FROM products "
                    "WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id")

    def rows() -> dict:
        with engine.connect() as conn:
            return {row[0]: row[1:] for row in conn.execute(versions, {"ids": ids})}

    before = rows()
    assert all(vector for _, _, vector in before.values())  # indexed by the fixture
    assert backend.index_ids(ids) == set(ids)
    assert rows() == before  # nothing written, nothing locked: same xmin, same place
    renamed, gone = catalog[0]["id"], catalog[3]["id"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE products SET name = 'Thermos flask' WHERE id = :id"), {"id": renamed})
        conn.execute(text("DELETE FROM product_variants WHERE product_id = :id"), {"id": gone})
        conn.execute(text("DELETE FROM products WHERE id = :id"), {"id": gone})
    renamed_row = rows()[renamed]
    assert backend.index_ids(ids) == set(ids) - {gone}  # the deleted one is missing
    after = rows()
    assert after[renamed][0] != renamed_row[0] and "'thermo'" in after[renamed][2]  # the new name written
    assert {i: after[i] for i in ids if i not in (renamed, gone)} == {
        i: before[i] for i in ids if i not in (renamed, gone)}
    assert _search(app.test_client(), "q=thermos") == ["Thermos flask"]


def test_indexing_a_batch_is_a_prepared_statement(app, catalog):
    """Planning it cost more than running it for an order's one or two products."""
    from sqlalchemy import create_engine, text

    from integrations.search.postgres import PostgresSearch

    engine = create_engine(app.extensions["shop"].db.engine.url, pool_size=1, max_overflow=0)
    try:
        backend = PostgresSearch(engine)
        for _ in range(2):
            assert backend.index_ids([catalog[0]["id"]]) == {catalog[0]["id"]}
        with engine.connect() as conn:  # the pool's one connection: the statement is prepared in it, once
            assert conn.execute(text("SELECT count(*) FROM pg_prepared_statements "
                                     "WHERE statement LIKE '%FROM stale s%'")).scalar() == 1
    finally:
        engine.dispose()


def test_a_broad_text_ranks_a_bounded_number_of_candidates_and_pages_stay_distinct(client, create_product,
                                                                                    monkeypatch):
    from integrations.search import postgres

    monkeypatch.setattr(postgres, "RANKED", 3)
    products = [create_product(f"Zebra lamp {n}", variants=[variant(f"Z{n}")]) for n in range(5)]
    index_now(*(p["id"] for p in products))
    first = client.get(f"{API}/products?q=zebra&limit=2").get_json()
    second = client.get(f"{API}/products?q=zebra&limit=2&cursor={first['nextCursor']}").get_json()
    names = [p["name"] for p in first["items"] + second["items"]]
    assert len(names) == len(set(names)) == 3 and all(name.startswith("Zebra lamp") for name in names)
    assert second["nextCursor"] is None


def test_a_plain_search_page_is_one_statement_tiers_and_products_included(app, client, headers, catalog):
    from tests.catalog.conftest import engines
    from tests.helpers import Statements

    for who in ("staff", "guest"):
        with Statements(*engines(app)) as sql:
            response = client.get(f"{API}/products?q=travel&limit=2", headers=headers[who])
        assert [p["name"] for p in response.get_json()["items"]] == ["Travel mug", "Teapot"]  # tier 1, tier 0
        executed = [s for s in sql.seen if not s.startswith("PREPARE")]  # (each connection prepares it once)
        assert len(executed) == 1, sql.seen  # the ranking of both tiers and the page's JSON: one round trip
        assert response.get_json()["items"][0] == client.get(f"{API}/products/{catalog[0]['id']}").get_json()
    rest = client.get(f"{API}/products?q=travel&limit=2&cursor={response.get_json()['nextCursor']}",
                      headers=headers["staff"]).get_json()
    assert [p["name"] for p in rest["items"]] == ["Kettle"] and rest["nextCursor"] is None
    with Statements(*engines(app)) as sql:  # a filter: the search planned for its values, the page prepared
        filtered = client.get(f"{API}/products?q=travel&maxPrice=40", headers=headers["staff"]).get_json()
    assert [p["name"] for p in filtered["items"]] == ["Travel mug", "Teapot"]
    assert len([s for s in sql.seen if not s.startswith("PREPARE")]) == 2
