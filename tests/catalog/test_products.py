"""Products and variants: CRUD, permissions for every role, and every kind of bad input."""

from __future__ import annotations

import pytest

from tests.catalog.conftest import API, variant

ROLES = ("guest", "customer", "staff", "admin", "super_admin")


def test_create_read_update_delete(client, headers, create_product, create_category):
    kitchen = create_category("Kitchen")
    product = create_product("Chef knife", description="Sharp", categoryId=kitchen["id"],
                             attributes={"steel": "VG10"}, variants=[variant("KN-1", "89.9")])
    assert product["variants"][0]["price"] == "89.90" and product["variants"][0]["currency"] == "EUR"
    assert product["variants"][0]["reserved"] == 0 and product["category"]["path"] == "Kitchen"

    got = client.get(f"{API}/products/{product['id']}").get_json()
    assert got["name"] == "Chef knife" and got["attributes"] == {"steel": "VG10"} and got["images"] == []

    changed = client.patch(f"{API}/products/{product['id']}", json={"name": "Chef's knife"}, headers=headers["staff"])
    assert changed.status_code == 200 and changed.get_json()["name"] == "Chef's knife"
    assert client.get(f"{API}/products/{product['id']}").get_json()["name"] == "Chef's knife"

    assert client.delete(f"{API}/products/{product['id']}", headers=headers["admin"]).status_code == 204
    missing = client.get(f"{API}/products/{product['id']}")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404


def test_variants_crud(client, headers, create_product):
    product = create_product(variants=[variant("MUG-S")])
    base = f"{API}/products/{product['id']}/variants"
    added = client.post(base, json=variant("MUG-L", "12.5", 3), headers=headers["admin"])
    assert added.status_code == 201 and added.get_json()["price"] == "12.50"
    variant_id = added.get_json()["id"]
    listed = client.get(base).get_json()
    assert {v["sku"] for v in listed["items"]} == {"MUG-S", "MUG-L"} and listed["nextCursor"] is None
    changed = client.patch(f"{base}/{variant_id}", json={"stock": 0, "price": "11.00"}, headers=headers["staff"])
    assert changed.get_json()["stock"] == 0 and changed.get_json()["price"] == "11.00"
    assert client.delete(f"{base}/{variant_id}", headers=headers["admin"]).status_code == 204
    assert client.get(f"{base}/{variant_id}").status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_permission_table_says(client, headers, create_product, role):
    product = create_product(variants=[variant("P-1")])
    path = f"{API}/products/{product['id']}"
    expected_denied = 401 if role == "guest" else 403
    may = {"view": True, "create": role in ("admin", "super_admin"),
           "update": role in ("staff", "admin", "super_admin"), "delete": role in ("admin", "super_admin")}

    assert client.get(path, headers=headers[role]).status_code == 200
    assert client.get(f"{API}/products", headers=headers[role]).status_code == 200
    created = client.post(f"{API}/products", json={"name": "New"}, headers=headers[role])
    assert created.status_code == (201 if may["create"] else expected_denied)
    updated = client.patch(path, json={"name": "Renamed"}, headers=headers[role])
    assert updated.status_code == (200 if may["update"] else expected_denied)
    new_variant = client.post(f"{path}/variants", json=variant("P-2"), headers=headers[role])
    assert new_variant.status_code == (201 if may["create"] else expected_denied)
    category = client.post(f"{API}/categories", json={"name": "C"}, headers=headers[role])
    assert category.status_code == (201 if may["create"] else expected_denied)
    deleted = client.delete(path, headers=headers[role])
    assert deleted.status_code == (204 if may["delete"] else expected_denied)


def test_admin_actions_need_mfa_but_updates_do_not(client, headers, create_product):
    product = create_product()
    refused = client.post(f"{API}/products", json={"name": "X"}, headers=headers["admin_no_mfa"])
    assert refused.status_code == 403 and "MFA" in refused.get_json()["message"]
    assert client.delete(f"{API}/products/{product['id']}", headers=headers["admin_no_mfa"]).status_code == 403
    allowed = client.patch(f"{API}/products/{product['id']}", json={"name": "Y"}, headers=headers["admin_no_mfa"])
    assert allowed.status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    (variant("A", price="12,50"), "price"),
    (variant("A", price="abc"), "price"),
    ({**variant("A"), "price": 12.5}, "price"),
    (variant("A", price="-1.00"), "price"),
    (variant("A", price="1.00001"), "price"),
    (variant("A", price="NaN"), "price"),
    (variant("A", currency="EURO"), "currency"),
    (variant("A", currency="XYZ"), "currency"),
    (variant("A", stock=-1), "stock"),
    ({**variant("A"), "stock": "3"}, "stock"),
    ({"price": "1.00", "currency": "EUR", "stock": 1}, "sku"),
])
def test_bad_variants_are_refused_naming_the_field(client, headers, create_product, body, field):
    product = create_product()
    response = client.post(f"{API}/products/{product['id']}/variants", json=body, headers=headers["admin"])
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]) == [field]
    assert client.get(f"{API}/products/{product['id']}/variants").get_json()["items"] == []


def test_bad_products_name_the_field(client, headers, create_category):
    missing = client.post(f"{API}/products", json={"description": "no name"}, headers=headers["admin"])
    assert missing.status_code == 422 and "name" in missing.get_json()["errors"]["json"]
    nested = client.post(f"{API}/products", json={"name": "N", "variants": [variant("A", stock=-2)]},
                         headers=headers["admin"])
    assert nested.get_json()["errors"]["json"] == {"variants": {"0": {"stock": ["Must be greater than or equal to 0 "
                                                                                 "and less than or equal to "
                                                                                 "2147483647."]}}}
    twice = client.post(f"{API}/products", json={"name": "N", "variants": [variant("A"), variant("A")]},
                        headers=headers["admin"])
    assert twice.status_code == 422 and "variants" in twice.get_json()["errors"]["json"]
    unknown = client.post(f"{API}/products", json={"name": "N", "categoryId": "00000000-0000-0000-0000-000000000001"},
                          headers=headers["admin"])
    assert unknown.status_code == 400 and "categoryId" in unknown.get_json()["errors"]
    assert client.get(f"{API}/products").get_json()["items"] == []


def test_duplicate_sku_is_a_conflict_and_nothing_is_half_written(client, headers, create_product):
    create_product("First", variants=[variant("DUP-1")])
    response = client.post(f"{API}/products", json={"name": "Second", "variants": [variant("NEW-1"), variant("DUP-1")]},
                           headers=headers["admin"])
    assert response.status_code == 409 and response.get_json()["errors"] == {"sku": ["already used by another variant"]}
    names = [p["name"] for p in client.get(f"{API}/products").get_json()["items"]]
    assert names == ["First"]
    other = create_product("Third", variants=[variant("T-1")])
    clash = client.patch(f"{API}/products/{other['id']}/variants/{other['variants'][0]['id']}",
                         json={"sku": "DUP-1"}, headers=headers["staff"])
    assert clash.status_code == 409 and "sku" in clash.get_json()["errors"]


def test_stock_cannot_drop_below_reserved(app, client, headers, create_product):
    from sqlalchemy import text

    product = create_product(variants=[variant("R-1", stock=5)])
    with app.extensions["shop"].db.session() as session:
        session.execute(text("UPDATE product_variants SET reserved = 3 WHERE sku = 'R-1'"))
    response = client.patch(f"{API}/products/{product['id']}/variants/{product['variants'][0]['id']}",
                            json={"stock": 2}, headers=headers["staff"])
    assert response.status_code == 409 and "stock" in response.get_json()["errors"]


def test_every_write_queues_indexing(app, client, headers, create_product):
    from sqlalchemy import select

    from models.outbox import OutboxMessage

    product = create_product(variants=[variant("Q-1")])
    client.patch(f"{API}/products/{product['id']}", json={"name": "Q"}, headers=headers["staff"])
    with app.extensions["shop"].db.session() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.task == "tasks.search.index_products")).all()
    assert len(rows) == 2 and all(row.kwargs == {"product_ids": [product["id"]]} for row in rows)
