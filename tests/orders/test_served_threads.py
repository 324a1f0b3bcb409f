"""The app as gunicorn serves it with the configured worker class (gthread: threads share one process):
concurrent requests each see their own caller, database session and request id."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.orders.conftest import ADDRESS, ORDERS, start_gunicorn


def test_threads_of_one_worker_keep_each_callers_requests_apart(people, make_variant, tmp_path):
    variant = make_variant(stock=1000)
    server = start_gunicorn(tmp_path, workers=1)  # one process: concurrency comes from its threads alone
    body = {"items": [{"variantId": str(variant), "quantity": 1}], "shippingAddress": ADDRESS}

    def work(n: int):
        name = ("customer", "customer_other")[n % 2]
        headers = {**people[name][1], "X-Request-ID": f"threads-{n}"}
        with requests.Session() as http:  # keep-alive, as browsers do
            created = http.post(server.url + ORDERS, json=body, headers=headers, timeout=60)
            product = http.get(f"{server.url}/api/v1/products?limit=5", headers={"X-Request-ID": f"guest-{n}"},
                               timeout=60)
        return name, n, created, product

    try:
        with ThreadPoolExecutor(24) as pool:
            results = list(pool.map(work, range(48)))
        lists = {name: requests.get(f"{server.url}{ORDERS}?limit=100", headers=people[name][1], timeout=60).json()
                 for name in ("customer", "customer_other")}
    finally:
        server.stop()
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Using worker: gthread" in log
    made = {"customer": set(), "customer_other": set()}
    for name, n, created, product in results:
        assert created.status_code == 201, created.text
        assert created.headers["X-Request-ID"] == f"threads-{n}" and product.headers["X-Request-ID"] == f"guest-{n}"
        assert product.status_code == 200 and product.json()["items"]
        made[name].add(created.json()["id"])
    for name, listing in lists.items():
        assert {order["id"] for order in listing["items"]} == made[name] and len(made[name]) == 24
