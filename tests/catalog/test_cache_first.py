"""A listing page found in the shared cache is served before its query string is parsed; misses parse as before."""

from __future__ import annotations

from unittest import mock

from tests.catalog.conftest import API, variant
from web.catalog import schemas


def test_a_cached_listing_is_served_without_parsing_and_bad_queries_are_still_refused(client, headers,
                                                                                   create_product):
    create_product("Teapot", variants=[variant("T", "12.00")])
    path = f"{API}/products?sort=name&limit=5"
    first = client.get(path)
    assert first.status_code == 200 and first.get_json()["items"][0]["name"] == "Teapot"
    parse = mock.patch.object(schemas.ProductQuerySchema, "load", side_effect=AssertionError("parsed"))
    with parse:  # a hit, for a guest and a customer alike, never reaches the parser
        for who in ("guest", "customer"):
            again = client.get(path, headers=headers[who])
            assert again.status_code == 200 and again.data == first.data
    # Refused queries are never cached, so they are parsed, and refused, every time, by every caller.
    for who in ("guest", "guest", "customer", "staff"):
        refused = client.get(f"{API}/products?sort=name&limit=0", headers=headers[who])
        assert refused.status_code == 422 and "limit" in str(refused.get_json())
    # Staff never read the shared page: their request is parsed (in front of the app, or by it) and rendered
    # even when it is cached.
    with parse, mock.patch("web.catalog.fast.parse_listing", side_effect=AssertionError("parsed")):
        assert client.get(path, headers=headers["staff"]).status_code != 200


def test_a_miss_after_invalidation_renders_with_the_version_it_saw(client, headers, create_product):
    product = create_product("Kettle", variants=[variant("K", "30.00")])
    path = f"{API}/products?sort=name&limit=3"
    assert client.get(path).get_json()["items"][0]["name"] == "Kettle"
    renamed = client.patch(f"{API}/products/{product['id']}", json={"name": "Kettle XL"}, headers=headers["staff"])
    assert renamed.status_code == 200
    assert client.get(path, headers=headers["customer"]).get_json()["items"][0]["name"] == "Kettle XL"
    assert client.get(path).get_json()["items"][0]["name"] == "Kettle XL"  # the customer's render, now cached
