"""Input that used to reach PostgreSQL, the JSON parser or the file system and answer 500: each class refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

ADDRESS = {"firstName": "Ada", "lastName": "Lovelace", "line1": "12 Analytical Row", "city": "London",
           "postalCode": "N1 9GU", "country": "GB"}


def order(variant, quantity=1):
    return {"items": [{"variantId": str(variant), "quantity": quantity}], "shippingAddress": dict(ADDRESS)}


def refused(response, code, location, field=None):
    assert response.status_code == code, (response.status_code, response.get_data(as_text=True)[:300])
    assert set(response.json) == {"code", "status", "message", "errors"}
    if field is not None:
        assert field in response.json["errors"][location], response.json
    return response.json


# --- NUL characters ---------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"name": "Kit\x00chen"}, "name"),
    ({"name": "Kitchen", "\x00": 1}, "\\0"),
])
def test_nul_in_a_json_field_is_422_naming_it(client, people, body, field):
    refused(client.post("/api/v1/categories", json=body, headers=people["admin"][1]), 422, "json", field)


def test_nul_deep_in_a_json_body_names_its_path(client, people, variant):
    body = order(variant)
    body["shippingAddress"]["city"] = "Lon\x00don"
    refused(client.post("/api/v1/orders", json=body, headers=people["customer"][1]), 422, "json",
            "shippingAddress.city")


def test_nul_in_a_query_parameter_or_path_segment(client, people):
    refused(client.get("/api/v1/products?q=tea%00pot"), 422, "query", "q")
    refused(client.get("/api/v1/auth/oauth/oi%00dc/authorize"), 400, "path")
    refused(client.get("/media/products/x%00.png"), 400, "path")


def test_nul_in_an_uploaded_file_name_or_form_field(client, people):
    from io import BytesIO

    upload = {"file": (BytesIO(b"sku,price\n"), "feed\x00.csv")}
    refused(client.post("/api/v1/imports", data=upload, headers=people["admin"][1]), 422, "form", "file")
    upload = {"file": (BytesIO(b"sku,price\n"), "feed.csv"), "format": "c\x00sv"}
    refused(client.post("/api/v1/imports", data=upload, headers=people["admin"][1]), 422, "form", "format")


# --- JSON nesting, integers -------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/auth/register", "/api/v1/categories", "/api/v1/orders"])
def test_json_nested_a_thousand_deep_is_400_on_any_json_endpoint(client, people, path):
    deep = "[" * 1000 + "]" * 1000
    response = client.post(path, data=deep, content_type="application/json", headers=people["admin"][1])
    refused(response, 400, "json")
    body = '{"name": "' + "[{" * 40 + '"}'  # brackets inside a string are text, not nesting
    assert client.post("/api/v1/categories", data=body, content_type="application/json",
                       headers=people["admin"][1]).status_code == 201


@pytest.mark.parametrize("quantity", [1.5, 2.0, True, "2", 10**40, -(2**31) - 1, 2**31])
def test_integer_fields_are_strict_and_bounded(client, people, variant, quantity):
    response = client.post("/api/v1/orders", json=order(variant, quantity), headers=people["customer"][1])
    refused(response, 422, "json", "items")


def test_an_integer_with_thousands_of_digits_is_4xx(client, people, variant):
    raw = json.dumps(order(variant)).replace('"quantity": 1', '"quantity": ' + "9" * 5000)
    response = client.post("/api/v1/orders", data=raw, content_type="application/json",
                           headers=people["customer"][1])
    assert 400 <= response.status_code < 500
    assert client.get("/api/v1/products?limit=" + "9" * 5000).status_code == 422
    assert client.get("/api/v1/products?limit=1e1").status_code == 422


# --- cursors ----------------------------------------------------------------

FORGED = ["eyJzIjoibmV3ZXN0IiwidiI6WzFlOTk5LCJ4Il19", "W1siTmFOIl0sMV0.AAAA", "W0luZmluaXR5LDFd.x", "x" * 600, "."]


@pytest.mark.parametrize("path", ["/api/v1/products", "/api/v1/products?sort=price", "/api/v1/products?q=tea",
                                  "/api/v1/categories", "/api/v1/orders", "/api/v1/users", "/api/v1/imports"])
def test_any_cursor_we_did_not_issue_is_400(client, people, path):
    headers = people["admin"][1]
    for cursor in FORGED:
        joiner = "&" if "?" in path else "?"
        response = client.get(f"{path}{joiner}cursor={cursor}", headers=headers)
        assert response.status_code in (400, 422), (path, cursor, response.status_code)
        assert "cursor" in json.dumps(response.json["errors"]), (path, cursor)


def test_a_cursor_for_one_listing_is_refused_by_another(client, people, app):
    from models import cursors

    users_cursor = cursors.encode("users", ["2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"])
    assert client.get(f"/api/v1/orders?cursor={users_cursor}", headers=people["admin"][1]).status_code == 400
    assert client.get(f"/api/v1/users?cursor={users_cursor}", headers=people["admin"][1]).status_code == 200


# --- database refusals ------------------------------------------------------

def test_moving_a_category_under_a_missing_parent_is_4xx_naming_parent_id(client, people):
    headers = people["admin"][1]
    created = client.post("/api/v1/categories", json={"name": "Kitchen"}, headers=headers).json
    missing = "00000000-0000-0000-0000-000000000001"
    for response in (client.patch(f"/api/v1/categories/{created['id']}", json={"parentId": missing}, headers=headers),
                     client.post("/api/v1/categories", json={"name": "Knives", "parentId": missing},
                                 headers=headers)):
        assert 400 <= response.status_code < 500 and "parentId" in response.json["errors"], response.json


@pytest.mark.parametrize("statement, code, field", [
    ("INSERT INTO categories (id, name, path, parent_id) VALUES (gen_random_uuid(), 'x', 'x', gen_random_uuid())",
     422, "parentId"),
    ("INSERT INTO categories (id, name, path) VALUES (gen_random_uuid(), 'Dup', 'Dup')", 409, "name"),
    ("INSERT INTO categories (id, name) VALUES (gen_random_uuid(), 'x')", 422, "path"),
    ("UPDATE product_variants SET price = -1", 422, "price"),
    ("UPDATE product_variants SET stock = 99999999999", 422, "body"),
])
def test_every_integrity_error_is_a_4xx_naming_the_field(app, client, variant, statement, code, field):
    """One handler maps PostgreSQL's diagnostics (constraint, column) to the field, wherever the error comes from."""
    from flask import Blueprint

    with app.extensions["shop"].db.session() as session:
        session.execute(text("INSERT INTO categories (id, name, path) VALUES (gen_random_uuid(), 'Dup', 'Dup')"))
    probe = Blueprint("probe", __name__)

    @probe.post("/probe")
    def run():
        with app.extensions["shop"].db.session() as session:
            session.execute(text(statement))
        return {}

    app.register_blueprint(probe)
    body = refused(app.test_client().post("/probe"), code, None)
    assert field in body["errors"], body
