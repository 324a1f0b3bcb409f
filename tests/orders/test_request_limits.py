"""The rate limit on the checkout's endpoints: one budget per caller across them, counted as flask-limiter counts."""

from __future__ import annotations

import dataclasses

import pytest

from tests.helpers import bearer, make_user
from tests.orders.conftest import ORDERS, place


@pytest.fixture
def limited(settings):
    """An app whose callers get 3 requests a minute, with a customer's headers."""
    from web import create_app

    app = create_app(dataclasses.replace(settings, RATE_LIMIT_DEFAULT="3 per minute"))
    app.config["TESTING"] = True
    with app.extensions["shop"].db.session() as session:
        user = make_user(session, "customer")
    yield app, bearer(app, user)
    app.extensions["shop"].db.dispose()


def test_plain_endpoints_share_one_budget(limited, make_variant):
    app, headers = limited
    client = app.test_client()
    variant = make_variant(stock=5)
    order = place(client, headers, variant)
    assert order.status_code == 201
    assert (order.headers["X-RateLimit-Limit"], order.headers["X-RateLimit-Remaining"]) == ("3", "2")
    paid = client.post(f"{ORDERS}/{order.json['id']}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
    assert paid.status_code == 202 and paid.headers["X-RateLimit-Remaining"] == "1"
    assert client.get(ORDERS, headers=headers).status_code == 200  # a third endpoint, the same caller's budget
    refused = place(client, headers, variant)
    assert refused.status_code == 429 and set(refused.json) == {"code", "status", "message", "errors"}
    assert refused.headers["X-RateLimit-Remaining"] == "0" and 0 < int(refused.headers["Retry-After"]) <= 60

