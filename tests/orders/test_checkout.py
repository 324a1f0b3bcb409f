"""Checkout: database prices, reservation under row locks, 409s, idempotency keys, visibility."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.orders.conftest import ADDRESS, ORDERS, place, stock_of


def test_checkout_prices_from_the_database_and_reserves_stock(app, client, people, make_variant):
    variant = make_variant(stock=5, price="12.50")
    _, headers = people["customer"]
    priced = client.post(ORDERS, json={"items": [{"variantId": str(variant), "quantity": 2, "price": "0.01"}],
                                       "shippingAddress": ADDRESS}, headers=headers)
    assert priced.status_code == 422 and "price" in priced.json["errors"]["json"]["items"]["0"]
    response = client.post(ORDERS, json={"items": [{"variantId": str(variant), "quantity": 2}],
                                         "shippingAddress": ADDRESS}, headers=headers)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "pending" and body["total"] == "25.0000" and body["currency"] == "EUR"
    assert body["payment"]["status"] == "pending" and body["payment"]["provider"] == "sandbox"
    assert body["billingAddress"]["line1"] == ADDRESS["line1"]  # billing defaults to shipping
    assert stock_of(app, variant) == (5, 2)
    events = client.get(f"{ORDERS}/{body['id']}/events", headers=headers).json["items"]
    assert [(e["kind"], e["toStatus"]) for e in events] == [("created", "pending")]


def test_too_little_stock_is_409_naming_the_variants(app, client, people, make_variant):
    plenty, scarce = make_variant(stock=9), make_variant(stock=1)
    _, headers = people["customer"]
    response = client.post(ORDERS, json={"items": [{"variantId": str(plenty), "quantity": 2},
                                                   {"variantId": str(scarce), "quantity": 2}],
                                         "shippingAddress": ADDRESS}, headers=headers)
    assert response.status_code == 409
    assert list(response.json["errors"]["items"]) == [str(scarce)]
    assert stock_of(app, plenty) == (9, 0) and stock_of(app, scarce) == (1, 0)  # nothing half-written


def test_bad_body_names_the_fields(client, people):
    _, headers = people["customer"]
    response = client.post(ORDERS, json={"items": [{"variantId": "nope", "quantity": 0}],
                                         "shippingAddress": {**ADDRESS, "country": "gb"}}, headers=headers)
    assert response.status_code == 422
    errors = response.json["errors"]["json"]
    assert set(errors["items"]["0"]) == {"variantId", "quantity"} and "country" in errors["shippingAddress"]


def test_guests_cannot_order(client, make_variant):
    assert place(client, {}, make_variant()).status_code == 401


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(app, client, people, make_variant):
    variant = make_variant(stock=5)
    _, headers = people["customer"]
    first = place(client, headers, variant, 1, **{"Idempotency-Key": "k-1"})
    again = place(client, headers, variant, 1, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert stock_of(app, variant) == (5, 1)  # reserved once
    other = place(client, headers, variant, 2, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]
    # the key belongs to its caller: another customer's same key is a new order
    assert place(client, people["customer_other"][1], variant, 1, **{"Idempotency-Key": "k-1"}).json["id"] \
        != first.json["id"]


def test_concurrent_retries_with_one_key_make_one_order(app, people, make_variant):
    variant = make_variant(stock=50)
    _, headers = people["customer"]

    def attempt(_):
        return place(app.test_client(), headers, variant, 1, **{"Idempotency-Key": "same"}).json["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(attempt, range(16)))
    assert len(ids) == 1 and stock_of(app, variant) == (50, 1)


def test_a_hundred_buyers_for_ten_units_make_exactly_ten_orders(app, people, make_variant, tmp_path):
    """Through gunicorn, as in production: 100 concurrent HTTP checkouts race for 10 units."""
    import requests

    from tests.orders.conftest import start_gunicorn

    variant = make_variant(stock=10)
    _, headers = people["customer"]
    server = start_gunicorn(tmp_path)
    try:
        body = {"items": [{"variantId": str(variant), "quantity": 1}], "shippingAddress": ADDRESS}

        def buy(_):
            return requests.post(f"{server.url}/api/v1/orders", json=body, headers=headers, timeout=60)

        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(buy, range(100)))
    finally:
        server.stop()
    codes = [answer.status_code for answer in answers]
    assert codes.count(201) == 10 and codes.count(409) == 90, sorted(set(codes))
    assert all(list(a.json()["errors"]["items"]) == [str(variant)] for a in answers if a.status_code == 409)
    assert stock_of(app, variant) == (10, 10)
    with app.extensions["shop"].db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar() == 10


def test_another_customers_order_is_404_and_staff_see_it(client, people, make_variant):
    order = place(client, people["customer"][1], make_variant()).json
    assert client.get(f"{ORDERS}/{order['id']}", headers=people["customer_other"][1]).status_code == 404
    assert client.get(f"{ORDERS}/{order['id']}/events", headers=people["customer_other"][1]).status_code == 404
    assert client.get(f"{ORDERS}/{order['id']}", headers=people["staff"][1]).json["id"] == order["id"]
    assert client.get(ORDERS, headers=people["customer_other"][1]).json["items"] == []
    assert [o["id"] for o in client.get(ORDERS, headers=people["staff"][1]).json["items"]] == [order["id"]]


def test_order_list_pages_with_a_cursor(client, people, make_variant):
    variant = make_variant(stock=10)
    _, headers = people["customer"]
    made = [place(client, headers, variant).json["id"] for _ in range(3)]
    first = client.get(f"{ORDERS}?limit=2", headers=headers).json
    second = client.get(f"{ORDERS}?limit=2&cursor={first['nextCursor']}", headers=headers).json
    assert [o["id"] for o in first["items"] + second["items"]] == made[::-1]
    assert second["nextCursor"] is None


def test_an_idempotency_key_is_forgotten_after_its_ttl(app, client, people, make_variant):
    variant = make_variant(stock=5)
    _, headers = people["customer"]
    first = place(client, headers, variant, 1, **{"Idempotency-Key": "old"}).json["id"]
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"))
    later = place(client, headers, variant, 2, **{"Idempotency-Key": "old"})
    assert later.status_code == 201 and later.json["id"] != first


def test_connections_the_server_dropped_cost_one_503_then_the_pool_reconnects(app, client, people, make_variant):
    """What a PostgreSQL restart leaves in a pool that does not pre-ping: sockets the server has closed."""
    variant = make_variant(stock=10)
    _, headers = people["customer"]
    engine = app.extensions["shop"].db.engine
    held = [engine.connect() for _ in range(3)]  # three pooled connections, all to be dropped at once
    pids = [conn.connection.dbapi_connection.get_backend_pid() for conn in held]
    for conn in held:
        conn.close()
    assert place(client, headers, variant).status_code == 201
    outside = create_engine(engine.url, poolclass=NullPool)  # not one of the connections being dropped
    with outside.begin() as other:
        other.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                      {"pids": pids})
    outside.dispose()
    answers = [place(client, headers, variant) for _ in range(3)]
    refused = [a for a in answers if a.status_code != 201]
    # One request meets a dead socket and answers 503 + Retry-After; SQLAlchemy then invalidates the whole
    # pool, so the other dropped connections are replaced at checkout instead of failing a request each.
    assert len(refused) <= 1 and all(a.status_code == 503 and a.headers.get("Retry-After") for a in refused), \
        [(a.status_code, a.json) for a in answers]
    assert sum(a.status_code == 201 for a in answers) >= 2
    assert stock_of(app, variant) == (10, 1 + sum(a.status_code == 201 for a in answers))


def test_an_order_list_page_is_one_statement_for_one_order_or_many(app, client, people, make_variant):
    """Items, addresses and the latest payment are read with the page's orders, in its one statement."""
    from tests.helpers import Statements

    variant = make_variant(stock=20)
    _, headers = people["customer"]
    made = [place(client, headers, variant).json for _ in range(5)]
    paid = client.post(f"{ORDERS}/{made[0]['id']}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
    assert paid.status_code == 202, paid.json
    engine = app.extensions["shop"].db.engine
    counts, bodies = [], []
    for limit in (1, 5):
        with Statements(engine) as statements:
            response = client.get(f"{ORDERS}?limit={limit}", headers=headers)
        assert response.status_code == 200
        counts.append(len(statements.seen))
        bodies.append(response.json["items"])
    assert counts == [1, 1], counts
    assert [o["id"] for o in bodies[1]] == [o["id"] for o in made[::-1]]
    single = {o["id"]: client.get(f"{ORDERS}/{o['id']}", headers=headers).json for o in made}
    for listed in bodies[1]:  # the page shows what each order's own page shows
        assert listed == single[listed["id"]]
    assert bodies[1][-1]["payment"]["status"] != "pending" and bodies[1][0]["payment"]["status"] == "pending"
    assert all(o["shippingAddress"]["line1"] and o["billingAddress"]["line1"] for o in bodies[1])


def test_a_staff_page_of_several_customers_orders_shows_what_each_order_shows(client, people, make_variant):
    """Lines of two products, a billing address of its own, a paid order beside unpaid ones, a cursor between;
    checkout's answer is the order's own page too."""
    mug, lamp = make_variant(stock=10, price="12.50"), make_variant(stock=10, price="1999.9900")
    billing = {**ADDRESS, "line1": "2 Billing Street", "line2": None, "phone": "+33 1 23 45 67 89"}
    placed = []
    for who in ("customer", "customer_other", "customer"):
        body = {"items": [{"variantId": str(mug), "quantity": 2}, {"variantId": str(lamp), "quantity": 1}],
                "shippingAddress": ADDRESS, "billingAddress": billing}
        answer = client.post(ORDERS, json=body, headers=people[who][1])
        assert answer.status_code == 201, answer.json
        assert answer.json == client.get(f"{ORDERS}/{answer.json['id']}", headers=people[who][1]).json
        placed.append(answer.json["id"])
    paid = client.post(f"{ORDERS}/{placed[1]}/pay", json={"paymentMethod": "sandbox_success"},
                       headers=people["customer_other"][1])
    assert paid.status_code == 202, paid.json
    staff = people["staff"][1]
    first = client.get(f"{ORDERS}?limit=2", headers=staff).json
    second = client.get(f"{ORDERS}?limit=2&cursor={first['nextCursor']}", headers=staff).json
    listed = first["items"] + second["items"]
    assert [o["id"] for o in listed] == placed[::-1] and second["nextCursor"] is None
    for order in listed:
        assert order == client.get(f"{ORDERS}/{order['id']}", headers=staff).json
        assert sorted((line["quantity"], line["lineTotal"]) for line in order["items"]) == [
            (1, "1999.9900"), (2, "25.0000")]
        assert {line["unitPrice"] for line in order["items"]} == {"12.5000", "1999.9900"}
        assert order["billingAddress"]["line1"] == "2 Billing Street" and order["billingAddress"]["line2"] is None
    assert listed[1]["payment"]["status"] != "pending" and listed[0]["payment"]["status"] == "pending"
    own = client.get(ORDERS, headers=people["customer"][1]).json["items"]
    assert [o["id"] for o in own] == [placed[2], placed[0]]
