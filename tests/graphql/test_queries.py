"""GraphQL reads: pages in a bounded number of SQL queries, the guest cache, errors with codes, the IDE."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import Statements

PAGE = """query Page($first: Int!, $after: String) {
  products(first: $first, after: $after) {
    edges { node { id name handle category { name path }
                   variants { sku price currency stock }
                   images { url altText position } } }
    pageInfo { hasNextPage endCursor }
  }
}"""




@pytest.mark.parametrize("size", [3, 20])
def test_a_page_with_variants_images_and_category_costs_at_most_four_queries(app, gql, headers, catalog, size):
    catalog(size + 5)
    with Statements(app.extensions["shop"].db.engine) as sql:
        body = gql(PAGE, headers["staff"], first=size)  # staff: never from the page cache
    nodes = [edge["node"] for edge in body["data"]["products"]["edges"]]
    assert "errors" not in body
    assert len(nodes) == size
    assert all(len(n["variants"]) == 2 and len(n["images"]) == 2 and n["category"]["path"] == "Kitchen"
               for n in nodes)
    assert sorted(v["price"] for v in nodes[0]["variants"]) == ["10.50", "9.50"]
    assert nodes[0]["images"][0]["url"].startswith("/media/products/")
    assert len(sql.seen) <= 4, sql.seen


def test_cursor_pages_follow_each_other_without_repeats(gql, headers, catalog):
    made = set(map(str, catalog(7)))
    first = gql(PAGE, headers["customer"], first=4)["data"]["products"]
    second = gql(PAGE, headers["customer"], first=4, after=first["pageInfo"]["endCursor"])["data"]["products"]
    seen = [e["node"]["id"] for e in first["edges"] + second["edges"]]
    assert first["pageInfo"]["hasNextPage"] and not second["pageInfo"]["hasNextPage"]
    assert sorted(seen) == sorted(made)


@pytest.mark.parametrize("sort", ["NEWEST", "NAME_DESC", "PRICE"])
def test_each_edge_has_a_cursor_to_continue_after_it(gql, headers, catalog, sort):
    catalog(6)
    query = """query ($sort: ProductSort, $after: String) { products(first: 4, sort: $sort, after: $after) {
                 edges { cursor node { id } } pageInfo { endCursor } } }"""
    page = gql(query, headers["customer"], sort=sort)["data"]["products"]
    ids = [edge["node"]["id"] for edge in page["edges"]]
    assert page["edges"][-1]["cursor"] == page["pageInfo"]["endCursor"]
    rest = gql(query, headers["customer"], sort=sort, after=page["edges"][1]["cursor"])["data"]["products"]
    following = [edge["node"]["id"] for edge in rest["edges"]]
    assert following[:2] == ids[2:] and len(following) == 4 and not set(following) & set(ids[:2])


def test_orders_with_items_events_and_shipments_load_in_batches(app, gql, headers, catalog):
    from models.orders.history import record
    from models.orders.tables import Order, OrderItem, OrderStatus, Shipment

    customer = headers["users"]["customer"]
    with app.extensions["shop"].db.session() as session:
        for n in range(6):
            order = Order(id=uuid.uuid4(), user_id=customer.id, status=OrderStatus.PROCESSING, currency="EUR",
                          subtotal=10, total=10, items=[OrderItem(sku=f"S{n}", product_name="Teapot",
                                                                  unit_price=10, quantity=1, line_total=10)])
            session.add(order)
            record(session, order, "created", "system", to_status=OrderStatus.PENDING)
            session.add(Shipment(order_id=order.id, carrier="sandbox", service="ground", tracking_number=f"T{n}"))
    query = """{ orders(first: 10) { nodes { id status total items { sku lineTotal }
                 events { kind toStatus } shipment { trackingNumber } } } }"""
    with Statements(app.extensions["shop"].db.engine) as sql:
        body = gql(query, headers["customer"])
    nodes = body["data"]["orders"]["nodes"]
    assert len(nodes) == 6 and all(n["events"][0]["toStatus"] == "pending" and n["shipment"] for n in nodes)
    assert nodes[0]["total"] == "10.00"
    assert len(sql.seen) <= 4, sql.seen  # orders, their items, events, shipments


def test_guests_share_the_catalog_page_cache_and_its_invalidation(app, client, gql, headers, catalog):
    [product_id] = catalog(1)
    query = f'{{ product(id: "{product_id}") {{ name }} }}'
    assert gql(query)["data"]["product"]["name"] == "Teapot 0"
    with Statements(app.extensions["shop"].db.engine) as sql:
        assert gql(query)["data"]["product"]["name"] == "Teapot 0"
    assert sql.seen == []  # served from Redis
    renamed = client.patch(f"/api/v1/products/{product_id}", json={"name": "Kettle"}, headers=headers["staff"])
    assert renamed.status_code == 200
    assert gql(query)["data"]["product"]["name"] == "Kettle"


def test_a_guests_cached_answer_is_read_in_the_rate_limiters_round_trip(app, client, gql, catalog):
    from tests.catalog.test_request_overheads import _count_commands
    from web.limits import limiter

    catalog(2)
    query = "{ products(first: 2) { nodes { name } } }"
    rendered = gql(query)
    limiter_calls: list = []
    cache_calls: list = []
    _count_commands(limiter.storage.get_connection(), limiter_calls)
    _count_commands(app.extensions["shop"].redis, cache_calls)
    assert gql(query) == rendered
    assert len(limiter_calls) == 1 and cache_calls == []


def test_search_and_filters_use_the_listing_rules(gql, headers, catalog):
    catalog(3)
    body = gql('{ products(minPrice: "abc") { nodes { id } } }')
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "minPrice" in error["extensions"]["fields"]
    out_of_range = gql("{ products(first: 0) { nodes { id } } }")["errors"][0]
    assert out_of_range["extensions"]["fields"] == {"limit": ["Must be greater than or equal to 1 and less than "
                                                              "or equal to 100."]}


def test_depth_limit(gql):
    nested = "children { " * 9 + "id" + " }" * 9
    body = gql(f"{{ categories {{ {nested} }} }}")
    [error] = body["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_DEEP", "depth": 11, "maxDepth": 8}
    assert "at most 8" in error["message"]


def test_cost_limit(gql):
    body = gql("{ a: products(first: 100) { nodes { variants { sku } images { url } } } "
               "  b: products(first: 100) { nodes { variants { sku } images { url } } } "
               "  c: products(first: 100) { nodes { variants { sku } images { url } } } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"] > error["extensions"]["maxCost"] == 5000
    assert gql("{ products(first: 100) { nodes { variants { sku } images { url } } } }").get("errors") is None


def test_writes_stay_on_rest_and_unknown_fields_are_refused(gql):
    body = gql('mutation { deleteProduct(id: "x") }')
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    body = gql("{ products { nodes { nope } } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_not_found_and_bad_ids_have_codes(gql):
    assert gql(f'{{ product(id: "{uuid.uuid4()}") {{ id }} }}')["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    error = gql('{ product(id: "not-a-uuid") { id } }')["errors"][0]
    assert error["extensions"] == {"code": "BAD_REQUEST", "status": 400, "fields": {"id": ["Not a valid UUID."]}}


def test_introspection_and_graphiql_only_in_development(settings, client, gql, tmp_path, monkeypatch):
    import dataclasses

    from web import create_app
    from web.graphql import ide

    assert gql("{ __schema { queryType { name } } }")["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert client.get("/graphql/ide").status_code == 404

    for name in ide.FILES:
        (tmp_path / name).write_text("/* asset */")
    monkeypatch.setattr(ide, "ASSETS", tmp_path)
    development = create_app(dataclasses.replace(settings, APP_ENV="development"))
    try:
        dev = development.test_client()
        schema = dev.post("/graphql", json={"query": "{ __schema { queryType { name } } }"}).get_json()
        assert schema["data"]["__schema"]["queryType"]["name"] == "Query"
        page = dev.get("/graphql/ide")
        assert page.status_code == 200 and b"/graphql/assets/graphiql.min.js" in page.data
        assert b"unpkg" not in page.data
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "http" not in csp
        asset = dev.get("/graphql/assets/graphiql.min.js")
        assert asset.status_code == 200 and asset.data == b"/* asset */"
        assert dev.get("/graphql/assets/other.js").status_code == 404
    finally:
        development.extensions["shop"].db.dispose()


def test_graphql_shares_the_callers_rate_limit_budget_with_rest(settings, headers):
    import dataclasses

    from web import create_app

    limited = create_app(dataclasses.replace(settings, RATE_LIMIT_DEFAULT="3 per minute"))
    try:
        client = limited.test_client()
        assert client.get("/api/v1/products", headers=headers["customer"]).status_code == 200
        answers = [client.post("/graphql", json={"query": "{ categories { id } }"}, headers=headers["customer"])
                   for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[-1].headers["Retry-After"] and answers[-1].get_json()["code"] == 429
    finally:
        limited.extensions["shop"].db.dispose()
