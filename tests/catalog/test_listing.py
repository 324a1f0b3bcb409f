"""Listing: price and stock filters, sorting, and keyset pages that inserts cannot disturb."""

from __future__ import annotations

from tests.catalog.conftest import API, variant


def _names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [p["name"] for p in response.get_json()["items"]]


def test_price_and_stock_filters(client, create_product):
    create_product("Cheap", variants=[variant("C", "5.00", stock=0)])
    create_product("Middle", variants=[variant("M1", "15.00", stock=2), variant("M2", "50.00", stock=0)])
    create_product("Dear", variants=[variant("D", "99.99", stock=1)])
    assert sorted(_names(client.get(f"{API}/products?minPrice=10&maxPrice=60"))) == ["Middle"]
    assert sorted(_names(client.get(f"{API}/products?inStock=true"))) == ["Dear", "Middle"]
    # One variant must match both: Middle's in-stock variant costs 15, its 50 one is sold out.
    assert _names(client.get(f"{API}/products?minPrice=40&inStock=true")) == ["Dear"]
    bad = client.get(f"{API}/products?minPrice=ten")
    assert bad.status_code == 422 and "minPrice" in bad.get_json()["errors"]["query"]
    crossed = client.get(f"{API}/products?minPrice=10&maxPrice=5")
    assert crossed.status_code == 422 and "minPrice" in crossed.get_json()["errors"]["query"]


def test_sorting(client, create_product):
    create_product("Banana", variants=[variant("B", "3.00")])
    create_product("apple", variants=[variant("A", "7.00")])
    create_product("Cherry", variants=[variant("C", "1.00")])
    assert _names(client.get(f"{API}/products?sort=price")) == ["Cherry", "Banana", "apple"]
    assert _names(client.get(f"{API}/products?sort=-price")) == ["apple", "Banana", "Cherry"]
    assert _names(client.get(f"{API}/products?sort=newest")) == ["Cherry", "apple", "Banana"]
    assert _names(client.get(f"{API}/products?sort=oldest")) == ["Banana", "apple", "Cherry"]
    assert client.get(f"{API}/products?sort=colour").status_code == 422


def _all_pages(client, query: str, between=None) -> list[str]:
    seen, cursor, pages = [], None, 0
    while True:
        response = client.get(f"{API}/products?{query}&limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += _names(response)
        cursor = response.get_json()["nextCursor"]
        pages += 1
        if between and pages == 1:
            between()
        if cursor is None:
            return seen


def test_pages_are_stable_under_inserts(client, create_product):
    for number in range(8):
        create_product(f"P{number}", variants=[variant(f"S{number}", f"{number}.00")])
    expected_by_price = [f"P{n}" for n in range(8)]

    def insert_cheaper_and_newer():
        create_product("Inserted", variants=[variant("NEW", "0.50")])

    assert _all_pages(client, "sort=price", between=insert_cheaper_and_newer) == expected_by_price
    newest = _all_pages(client, "sort=newest", between=lambda: create_product("Later"))
    assert newest == ["Inserted"] + [f"P{n}" for n in reversed(range(8))]


def test_a_cursor_from_another_order_or_tampered_is_refused(client, create_product):
    for number in range(3):
        create_product(f"P{number}")
    cursor = client.get(f"{API}/products?sort=name&limit=1").get_json()["nextCursor"]
    assert cursor
    other = client.get(f"{API}/products?sort=price&limit=1&cursor={cursor}")
    assert other.status_code == 400 and "cursor" in other.get_json()["errors"]
    assert client.get(f"{API}/products?cursor=not-base64!").status_code == 400
