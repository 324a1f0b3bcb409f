"""The Elasticsearch adapter through the official client, against the twin on loopback."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from integrations.errors import TransientError
from integrations.search import ProductDocument, SearchQuery, VariantFacts
from integrations.search.elasticsearch import MAPPINGS, ElasticsearchSearch, make_client, to_simple_query
from tests.twins.elasticsearch import ElasticsearchTwin


@pytest.fixture(scope="module")
def twin():
    with ElasticsearchTwin() as server:
        yield server


@pytest.fixture
def search(twin):
    twin.indexes.clear()
    twin.requests.clear()
    return ElasticsearchSearch(make_client(twin.url, timeout=2), "products")


def doc(id_: str, name: str, description: str = "", price: str = "10.00", available: int = 1, **fields):
    return ProductDocument(id=id_, name=name, description=description,
                           variants=[VariantFacts(Decimal(price), "EUR", available)], **fields)


def test_first_write_creates_an_index_with_explicit_mappings_behind_the_alias(twin, search):
    search.index([doc("a", "Travel mug")])
    created = twin.requests_to("PUT", r"/products-\d+-\d+")
    assert len(created) == 1
    body = json.loads(created[0]["body"])
    assert body["mappings"] == MAPPINGS and body["mappings"]["dynamic"] == "strict"
    assert body["aliases"] == {"products": {}}
    assert all(r["headers"].get("accept", "").startswith("application/vnd.elasticsearch+json") for r in twin.requests)


def test_documents_go_in_bulk_requests(twin, search):
    search.index([doc(str(n), f"Mug {n}") for n in range(1200)])
    bulks = twin.requests_to("PUT", r"/products/_bulk") + twin.requests_to("POST", r"/products/_bulk")
    assert len(bulks) == 3  # 500 per request
    lines = bulks[0]["body"].decode().splitlines()
    assert json.loads(lines[0]) == {"index": {"_id": "0"}}
    assert json.loads(lines[1])["variants"] == [{"price": 10.0, "currency": "EUR", "available": 1}]
    search.delete(["0", "missing"])
    (index,) = twin.resolve("products")
    assert len(twin.indexes[index]["docs"]) == 1199


def test_search_ranks_name_above_description_filters_and_pages(twin, search):
    search.index([doc("a", "Teapot", "for a travel mug lover", price="35.00"),
                  doc("b", "Travel mug", "keeps coffee hot", price="20.00"),
                  doc("c", "Kettle", "boils water", price="45.00", available=0, category_id="k",
                      category_path="Kitchen", attributes="travel green")])
    assert search.search(SearchQuery("travel")).ids == ["b", "a", "c"]
    assert search.search(SearchQuery("trav")).ids == ["b", "a", "c"]  # prefix while typing
    assert search.search(SearchQuery("travel -tea")).ids == ["b", "a", "c"]
    assert search.search(SearchQuery("travel -teapot")).ids == ["b", "c"]
    assert search.search(SearchQuery("travel", max_price=Decimal("30"))).ids == ["b"]
    assert search.search(SearchQuery("travel", in_stock=True)).ids == ["b", "a"]
    assert search.search(SearchQuery("travel", category_ids=["k"])).ids == ["c"]
    first = search.search(SearchQuery("travel", limit=2))
    assert first.ids == ["b", "a"] and first.next_after
    assert search.search(SearchQuery("travel", limit=2, after=first.next_after)).ids == ["c"]
    sent = json.loads(twin.requests_to("POST", r"/products/_search")[0]["body"])
    assert sent["sort"] == [{"_score": "desc"}, {"id": "asc"}] and sent["_source"] is False


def test_web_syntax_becomes_simple_query_string():
    assert to_simple_query("travel mu") == "travel mu*"
    assert to_simple_query("espresso or kettle ") == "espresso | kettle"
    assert to_simple_query('"boils water" -tea') == '"boils water" -tea'


def test_reindex_builds_a_new_index_and_swaps_the_alias_in_one_call(twin, search):
    search.index([doc("old", "Old mug")])
    (old_index,) = twin.resolve("products")
    progress = []
    count = search.reindex((doc(str(n), f"Mug {n}") for n in range(700)), progress.append)
    assert count == 700 and sum(progress) == 700
    (new_index,) = twin.resolve("products")
    assert new_index != old_index and old_index not in twin.indexes
    swaps = twin.requests_to("POST", r"/_aliases")
    assert len(swaps) == 1
    assert json.loads(swaps[0]["body"])["actions"] == [
        {"remove": {"index": old_index, "alias": "products"}}, {"add": {"index": new_index, "alias": "products"}}]
    # The new index was filled and refreshed before the swap, and the old one deleted after it.
    order = [(r["method"], r["path"]) for r in twin.requests]
    assert order.index(("POST", f"/{new_index}/_refresh")) < order.index(("POST", "/_aliases"))
    assert order.index(("POST", "/_aliases")) < order.index(("DELETE", f"/{old_index}"))
    assert search.search(SearchQuery("old")).ids == [] and len(search.search(SearchQuery("mug", limit=50)).ids) == 50


def test_an_unreachable_server_is_a_transient_error():
    backend = ElasticsearchSearch(make_client("http://127.0.0.1:9", timeout=0.5), "products")
    with pytest.raises(TransientError):
        backend.index([doc("a", "Mug")])


@pytest.fixture
def es_app(settings, twin):
    from dataclasses import replace

    from web import create_app

    twin.indexes.clear()
    app = create_app(replace(settings, SEARCH_BACKEND="elasticsearch", ELASTICSEARCH_URL=twin.url,
                             ELASTICSEARCH_INDEX="shop-products"))
    yield app
    app.extensions["shop"].db.dispose()


def test_the_api_searches_through_elasticsearch_and_the_reindex_command_swaps(es_app, twin, headers):
    client = es_app.test_client()
    for name in ("Travel mug", "Teapot"):
        assert client.post("/api/v1/products", json={"name": name}, headers=headers["admin"]).status_code == 201
    result = es_app.test_cli_runner().invoke(args=["search", "reindex", "--quiet"])
    assert result.exit_code == 0 and "indexed 2 products" in result.output
    (index,) = twin.resolve("shop-products")
    assert len(twin.indexes[index]["docs"]) == 2
    found = client.get("/api/v1/products?q=trav").get_json()["items"]
    assert [p["name"] for p in found] == ["Travel mug"]
    assert twin.requests_to("POST", r"/shop-products/_search")


def test_a_change_reaches_elasticsearch_through_a_real_worker(es_app, twin, headers, tmp_path):
    from tests.conftest import start_worker
    from tests.helpers import wait_for

    worker = start_worker(tmp_path, SEARCH_BACKEND="elasticsearch", ELASTICSEARCH_URL=twin.url,
                          ELASTICSEARCH_INDEX="shop-products")
    try:
        client = es_app.test_client()

        def names(query: str) -> list[str]:
            return [p["name"] for p in client.get(f"/api/v1/products?q={query}").get_json()["items"]]

        product = client.post("/api/v1/products", json={"name": "Plain bottle"}, headers=headers["admin"]).get_json()
        wait_for(lambda: names("bottle") == ["Plain bottle"], message="the product in the index")
        client.patch(f"/api/v1/products/{product['id']}", json={"name": "Insulated flask"}, headers=headers["staff"])
        wait_for(lambda: names("insulated") == ["Insulated flask"], timeout=30, message="the update")
        client.delete(f"/api/v1/products/{product['id']}", headers=headers["admin"])
        wait_for(lambda: not twin.indexes[twin.resolve("shop-products")[0]]["docs"], timeout=30,
                 message="the deleted product dropped from the index")
    finally:
        worker.stop()
