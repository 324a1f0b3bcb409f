"""A signed-in customer's catalog reads come from the guest's cache entries; staff's never do."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import text

from tests.catalog.conftest import API, engines, variant
from tests.helpers import Statements
from tests.catalog.test_request_overheads import _count_commands
from web.limits import limiter




def _rename_behind_the_apps_back(app, product_id: str, name: str) -> None:
    """A change the cache is not told about: whoever still sees the old name was served the cached page."""
    with app.extensions["shop"].db.session() as session:
        session.execute(text("UPDATE products SET name = :name WHERE id = :id"), {"name": name, "id": product_id})


@pytest.fixture
def pages(create_product):
    """The three cached reads: a product's detail, a listing and a search."""
    product = create_product("Teapot", variants=[variant("T", "12.00")])
    return product, [f"{API}/products/{product['id']}", f"{API}/products?sort=name&limit=5",
                     f"{API}/products?q=teapot"]


def test_a_customer_is_served_the_guests_cached_page_with_the_same_etag_without_sql(app, client, headers, pages):
    product, paths = pages
    guest = [client.get(path) for path in paths]  # rendered by a guest: the pages are now cached
    assert all(r.status_code == 200 and r.headers["Cache-Control"].startswith("public") for r in guest)
    with Statements(*engines(app)) as sql:
        signed_in = [client.get(path, headers=headers["customer"]) for path in paths]
    assert sql.seen == []  # no PostgreSQL at all, the token's check included
    for mine, theirs in zip(signed_in, guest, strict=True):
        assert mine.status_code == 200 and mine.data == theirs.data
        assert mine.headers["ETag"] == theirs.headers["ETag"]
        # Never stored by a shared cache: private, and varying on the credentials.
        assert mine.headers["Cache-Control"] == "private, no-cache"
        assert "Authorization" in mine.headers["Vary"]
    revalidated = client.get(paths[0], headers={**headers["customer"], "If-None-Match": guest[0].headers["ETag"]})
    assert revalidated.status_code == 304 and revalidated.headers["Cache-Control"] == "private, no-cache"


def test_a_page_a_customer_rendered_is_served_to_a_guest(app, client, headers, pages):
    _product, paths = pages
    rendered = client.get(paths[0], headers=headers["customer"])
    with Statements(*engines(app)) as sql:
        guest = client.get(paths[0])
    assert sql.seen == [] and guest.data == rendered.data and guest.headers["ETag"] == rendered.headers["ETag"]
    assert guest.headers["Cache-Control"].startswith("public")


def test_a_customers_cached_page_costs_one_round_trip_like_a_guests(app, client, headers, pages):
    _product, paths = pages
    rendered = [client.get(path) for path in paths[:2]]
    limiter_calls: list = []
    app_calls: list = []
    _count_commands(limiter.storage.get_connection(), limiter_calls)
    _count_commands(app.extensions["shop"].redis, app_calls)
    cached = [client.get(path, headers=headers["customer"]) for path in paths[:2]]
    assert [r.data for r in cached] == [r.data for r in rendered]
    # The page and the token's revocation keys are read in the rate limiter's script: one trip, as a guest's.
    assert len(limiter_calls) == 2 and app_calls == [], (limiter_calls, app_calls)


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_and_admins_neither_read_nor_write_the_shared_pages(app, client, headers, pages, role):
    product, paths = pages
    for path in paths:
        assert client.get(path).status_code == 200  # cached by a guest
    _rename_behind_the_apps_back(app, product["id"], "Kettle")
    with Statements(*engines(app)) as sql:
        theirs = client.get(paths[0], headers=headers[role])
    assert sql.seen and theirs.get_json()["name"] == "Kettle"  # rendered from PostgreSQL for them
    assert theirs.headers["Cache-Control"] == "private, no-cache"
    listing = client.get(paths[1], headers=headers[role])
    assert [p["name"] for p in listing.get_json()["items"]] == ["Kettle"]
    # ... and what they rendered was not written where guests and customers read.
    assert client.get(paths[0]).get_json()["name"] == "Teapot"
    assert client.get(paths[0], headers=headers["customer"]).get_json()["name"] == "Teapot"
    assert [p["name"] for p in client.get(paths[1]).get_json()["items"]] == ["Teapot"]


def test_staff_render_does_not_fill_the_shared_cache(app, client, headers, pages):
    _product, paths = pages
    client.get(paths[0], headers=headers["staff"])
    with Statements(*engines(app)) as sql:
        client.get(paths[0], headers=headers["customer"])
    assert sql.seen  # nothing was cached by staff's read: the customer's is rendered


def test_an_update_reaches_signed_in_readers(app, client, headers, pages):
    product, paths = pages
    for path in paths[:2]:
        assert client.get(path, headers=headers["customer"]).status_code == 200
    old_etag = client.get(paths[0], headers=headers["customer"]).headers["ETag"]
    renamed = client.patch(paths[0], json={"name": "Kettle"}, headers=headers["staff"])
    assert renamed.status_code == 200
    detail = client.get(paths[0], headers={**headers["customer"], "If-None-Match": old_etag})
    assert detail.status_code == 200 and detail.get_json()["name"] == "Kettle"
    listing = client.get(paths[1], headers=headers["customer"])
    assert [p["name"] for p in listing.get_json()["items"]] == ["Kettle"]


def test_a_revoked_or_expired_token_is_refused_even_when_the_page_is_cached(app, client, headers, pages):
    _product, paths = pages
    for path in paths:
        assert client.get(path, headers=headers["customer"]).status_code == 200  # cached
    logout = client.post(f"{API}/auth/logout", headers=headers["customer"])
    assert logout.status_code in (200, 204), logout.get_data(as_text=True)
    for path in paths:
        refused = client.get(path, headers=headers["customer"])
        assert refused.status_code == 401 and b"Teapot" not in refused.data
    with app.app_context():
        expired = create_access_token(identity=str(uuid.uuid4()), expires_delta=timedelta(seconds=-5),
                                      additional_claims={"role": "customer", "mfa": False, "sid": str(uuid.uuid4())})
    refused = client.get(paths[0], headers={"Authorization": f"Bearer {expired}"})
    assert refused.status_code == 401 and b"Teapot" not in refused.data
    forged = client.get(paths[0], headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401


def test_rate_limits_stay_per_caller_when_served_from_the_cache(app, client, headers, pages):
    _product, paths = pages
    client.get(paths[0])  # cached
    first = client.get(paths[0], headers=headers["customer"])
    second = client.get(paths[0], headers=headers["customer"])
    other = client.get(paths[0], headers=headers["staff"])
    guest = client.get(paths[0])
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in (first, second, other, guest)]
    limit = int(app.extensions["shop"].settings.RATE_LIMIT_DEFAULT.split()[0])
    # The customer's own budget went down by one per request; staff's and the guest address's are their own.
    assert remaining[0] == remaining[1] + 1 and remaining[2] == limit - 1 and remaining[3] == limit - 2
