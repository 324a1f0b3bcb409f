"""The rate limit on the checkout's endpoints: resolved once per app and endpoint, counted as flask-limiter counts."""

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


def test_plain_endpoints_resolve_their_limits_once_and_share_one_budget(limited, make_variant, monkeypatch):
    from web.limits import limiter

    app, headers = limited
    resolved = []
    resolve = limiter.limit_manager.resolve_limits
    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", lambda *a, **k: resolved.append(a) or resolve(*a, **k))
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
    assert resolved == []  # flask-limiter's per-request resolution never ran for these endpoints
    plans = app.extensions["shop.limit_plans"]
    assert {endpoint for _, endpoint in plans} == {"orders.Orders", "orders.Pay"}


def test_an_endpoint_with_its_own_limit_keeps_flask_limiters_path(limited, monkeypatch):
    """Sign-in's per-address limit is decorated: its requests are resolved by flask-limiter each time."""
    from web.limits import limiter

    app, _ = limited
    resolved = []
    resolve = limiter.limit_manager.resolve_limits
    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", lambda *a, **k: resolved.append(a) or resolve(*a, **k))
    client = app.test_client()
    answers = [client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "x" * 12})
               for _ in range(4)]
    assert [a.status_code for a in answers][-1] == 429
    assert resolved  # resolved per request, as before
    assert all(plan is None for (_, endpoint), plan in app.extensions["shop.limit_plans"].items()
               if endpoint.startswith("auth."))
