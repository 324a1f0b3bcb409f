"""Product pages answered in front of Flask (web.catalog.fast): the app's answer, for less.

Each test compares the layer's answer with the app's own for the same request (the layer taken out of the
way), so a header the app adds later and the layer forgets fails here.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

import pytest

from tests.catalog.conftest import API, Passes, engines, variant
from tests.catalog.test_request_overheads import _count_commands
from tests.helpers import Statements
from web.limits import limiter

# Per request, or per moment: the rest of the headers must be the app's exactly.
VOLATILE = {"X-Request-ID", "X-RateLimit-Remaining", "X-RateLimit-Reset"}


@pytest.fixture
def pages(client, create_product):
    """A detail, a listing and a search page, cached by a guest's render."""
    product = create_product("Teapot", variants=[variant("T", "12.00")])
    paths = [f"{API}/products/{product['id']}", f"{API}/products?sort=name&limit=5", f"{API}/products?q=teapot"]
    for path in paths:
        assert client.get(path).status_code == 200
    return paths


def _by_the_app(app, client, path, headers):
    """The Flask app's own answer, the layer out of the way."""
    layer = app.wsgi_app
    app.wsgi_app = layer.app
    try:
        return client.get(path, headers=headers)
    finally:
        app.wsgi_app = layer


def _steady(response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.items() if name not in VOLATILE]


@pytest.mark.parametrize("who", ["guest", "customer"])
def test_a_hit_is_answered_in_front_of_the_app_with_the_apps_body_and_headers(app, client, headers, pages,
                                                                               passes, who):
    for path in pages:
        passes.count = 0
        with Statements(*engines(app)) as sql:
            fast = client.get(path, headers=headers[who])
        assert passes.count == 0 and sql.seen == [], path  # neither Flask nor PostgreSQL
        slow = _by_the_app(app, client, path, headers[who])
        assert fast.status_code == slow.status_code == 200 and fast.data == slow.data
        assert _steady(fast) == _steady(slow), path
        assert [name for name, _ in fast.headers.items()] == [name for name, _ in slow.headers.items()]
        # Each counted once, against the same caller's budget: the app's answer came one request later.
        assert int(fast.headers["X-RateLimit-Remaining"]) == int(slow.headers["X-RateLimit-Remaining"]) + 1
        assert int(fast.headers["X-RateLimit-Reset"]) - int(slow.headers["X-RateLimit-Reset"]) in (-1, 0)
        # A revalidation: 304, no body, the same headers as the app's 304.
        etag = {**headers[who], "If-None-Match": fast.headers["ETag"]}
        passes.count = 0
        fresh, slow_fresh = client.get(path, headers=etag), _by_the_app(app, client, path, etag)
        assert passes.count == 1  # the app's own answer only
        assert fresh.status_code == slow_fresh.status_code == 304 and fresh.data == slow_fresh.data == b""
        assert _steady(fresh) == _steady(slow_fresh)


def test_a_plain_request_id_is_kept_and_https_gets_hsts(app, client, pages, passes):
    plain = client.get(pages[0], headers={"X-Request-ID": "abc-123"})
    assert plain.headers["X-Request-ID"] == "abc-123"
    odd = client.get(pages[0], headers={"X-Request-ID": "no spaces allowed"})
    assert odd.headers["X-Request-ID"] != "no spaces allowed" and len(odd.headers["X-Request-ID"]) == 32
    secure = client.get(pages[0], base_url="https://localhost")
    assert passes.count == 0
    slow = _by_the_app(app, client, pages[0], {})
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in slow.headers


def test_a_hit_costs_one_redis_round_trip_and_is_logged_and_measured_as_the_apps(app, client, headers, pages,
                                                                                 passes, caplog):
    from web.metrics import REQUESTS

    calls: list = []
    _count_commands(limiter.storage.get_connection(), calls)
    rule = "/api/v1/products/<uuid:product_id>"
    before = REQUESTS.labels("GET", rule, "200")._value.get()
    with caplog.at_level(logging.INFO, logger="web.access"):
        client.get(pages[0], headers=headers["customer"])
    assert len(calls) == 1 and passes.count == 0
    assert REQUESTS.labels("GET", rule, "200")._value.get() == before + 1
    [line] = [r for r in caplog.records if r.name == "web.access"]
    assert (line.method, line.path, line.status) == ("GET", pages[0], 200)


def test_a_miss_is_rendered_in_front_and_counted_once(app, client, headers, create_product, passes):
    product = create_product("Kettle", variants=[variant("K", "20.00")])
    path = f"{API}/products/{product['id']}"
    calls: list = []
    _count_commands(limiter.storage.get_connection(), calls)
    passes.count = 0
    first = client.get(path, headers=headers["customer"])  # a miss: rendered from PostgreSQL here, then cached
    second = client.get(path, headers=headers["customer"])  # now a hit
    assert first.status_code == second.status_code == 200 and first.data == second.data
    assert passes.count == 0
    assert calls.count("EVALSHA") == 2  # one trip each
    assert int(first.headers["X-RateLimit-Remaining"]) == int(second.headers["X-RateLimit-Remaining"]) + 1


def test_a_revoked_token_is_refused_on_a_cached_page_without_being_counted_twice(app, client, headers, pages,
                                                                                 passes):
    assert client.get(pages[0], headers=headers["customer"]).status_code == 200
    assert client.post(f"{API}/auth/logout", headers=headers["customer"]).status_code in (200, 204)
    passes.count = 0
    calls: list = []
    _count_commands(limiter.storage.get_connection(), calls)
    for path in pages:
        refused = client.get(path, headers=headers["customer"])
        assert refused.status_code == 401 and b"Teapot" not in refused.data
        assert refused.get_json()["code"] == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert passes.count == 3 and calls.count("EVALSHA") == 3


@pytest.mark.parametrize("who", ["staff", "admin"])
def test_staff_are_served_in_front_from_postgresql_and_odd_requests_go_to_the_app(app, client, headers, pages,
                                                                                  passes, who):
    passes.count = 0
    with Statements(*engines(app)) as sql:
        own = client.get(pages[0], headers=headers[who])
    assert own.headers["Cache-Control"] == "private, no-cache" and passes.count == 0
    assert sql.seen  # rendered from PostgreSQL for them, not served from the shared page
    assert client.get(pages[0], headers={"X-API-Key": "not-a-key"}).status_code == 401
    assert client.get(pages[1] + "&x=%00").status_code == 422  # NUL in the query: the app refuses it
    assert client.get(pages[0], headers={"Authorization": "Bearer a b"}).status_code == 401
    assert client.get(pages[0], headers={"Authorization": "Bearer forged"}).status_code == 401
    assert client.get(pages[0].upper().replace("/API/V1/PRODUCTS/", "/api/v1/products/")).status_code == 200
    assert client.head(pages[0]).status_code == 200
    assert client.get(pages[0], data=b"x" * 10).status_code == 200  # a body: the app reads (and checks) it
    assert passes.count == 7
    assert client.get(pages[0], headers={"Content-Length": "0"}).status_code == 200  # no body: served here
    assert passes.count == 7


def test_the_limit_is_the_apps_counter_and_its_429_is_the_apps(settings, create_product):
    from web import create_app

    limited = create_app(dataclasses.replace(settings, RATE_LIMIT_DEFAULT="3 per minute"))
    try:
        client = limited.test_client()
        passes = Passes(limited)
        path = f"{API}/products/{create_product('Jug')['id']}"
        assert client.get(path).status_code == 200  # a miss rendered in front, counted once
        assert client.get(f"{API}/categories").status_code == 200  # another endpoint: the same budget
        assert client.get(path).status_code == 200  # the third, a hit answered in front
        assert passes.count == 1
        refused = client.get(path)
        assert passes.count == 2  # over the limit: the app answers its 429, from the layer's trip
        assert refused.status_code == 429 and set(refused.get_json()) == {"code", "status", "message", "errors"}
        assert refused.headers["X-RateLimit-Limit"] == "3" and refused.headers["X-RateLimit-Remaining"] == "0"
        assert 0 < int(refused.headers["Retry-After"]) <= 60
        passes.layer.app = passes.inner
        again = client.get(path)
        assert again.status_code == 429 and again.get_json() == refused.get_json()
        other = client.get(path, headers={"X-Forwarded-For": "10.0.0.1"}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert other.status_code == 200  # another address, its own budget
    finally:
        limited.extensions["shop"].db.dispose()


def test_a_product_that_does_not_exist_is_the_apps_404(client, passes):
    passes.count = 0
    missing = client.get(f"{API}/products/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404 and passes.count == 1


def test_a_script_redis_forgot_is_loaded_again_and_the_hit_counted_once(client, pages, passes):
    before = client.get(pages[0])
    limiter.storage.get_connection().script_flush()  # as after a Redis restart
    after = client.get(pages[0])
    assert after.status_code == 200 and after.data == before.data
    assert int(before.headers["X-RateLimit-Remaining"]) == int(after.headers["X-RateLimit-Remaining"]) + 1
