"""Public GraphQL queries of a signed-in customer share the guest's cache entries; private ones never do."""

from __future__ import annotations

import pytest

from tests.graphql.test_queries import PAGE
from tests.helpers import Statements


def _post(client, query: str, headers: dict | None = None, **variables):
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers or {})


def _rename(app, product_id, name: str) -> None:
    """A change the cache is not told about: whoever still sees the old name was served the cached answer."""
    from sqlalchemy import text

    with app.extensions["shop"].db.session() as session:
        session.execute(text("UPDATE products SET name = :name WHERE id = :id"), {"name": name, "id": product_id})


def test_a_customer_is_served_the_guests_cached_page_without_sql(app, client, headers, catalog):
    catalog(25)
    guest = _post(client, PAGE, first=20)
    assert guest.status_code == 200 and len(guest.get_json()["data"]["products"]["edges"]) == 20
    with Statements(app.extensions["shop"].db.engine) as sql:
        mine = _post(client, PAGE, headers["customer"], first=20)
    assert mine.status_code == 200 and mine.data == guest.data
    assert sql.seen == []  # no PostgreSQL at all, the token's check included
    get = client.get("/graphql", query_string={"query": "{ categories { name } }"}, headers=headers["customer"])
    assert get.status_code == 200 and get.get_json()["data"]["categories"]
    for response in (mine, get):  # never stored by any cache, the browser's included
        assert response.headers["Cache-Control"] == "no-store"
        assert "Authorization" in response.headers["Vary"]
    with Statements(app.extensions["shop"].db.engine) as sql:
        again = client.get("/graphql", query_string={"query": "{ categories { name } }"})
    assert again.data == get.data and sql.seen == []  # the customer's render, served to a guest


def test_a_query_with_a_callers_own_fields_is_never_shared(app, client, headers, catalog):
    catalog(2)
    query = "{ me { email } products(first: 2) { nodes { name } } }"
    first = _post(client, query, headers["customer"]).get_json()
    with Statements(app.extensions["shop"].db.engine) as sql:
        second = _post(client, query, headers["customer_b"]).get_json()
    assert sql.seen  # rendered for this caller
    assert first["data"]["me"]["email"] == headers["users"]["customer"].email
    assert second["data"]["me"]["email"] == headers["users"]["customer_b"].email
    spread = "query { ...Mine } fragment Mine on Query { me { email } }"
    assert _post(client, spread, headers["customer"]).get_json()["data"]["me"]["email"] == \
        headers["users"]["customer"].email
    assert _post(client, spread, headers["customer_b"]).get_json()["data"]["me"]["email"] == \
        headers["users"]["customer_b"].email


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_and_admins_neither_read_nor_write_the_shared_answers(app, client, headers, catalog, role):
    [product_id] = catalog(1)
    query = f'{{ product(id: "{product_id}") {{ name }} }}'
    assert _post(client, query).get_json()["data"]["product"]["name"] == "Teapot 0"  # cached by a guest
    _rename(app, product_id, "Kettle")
    with Statements(app.extensions["shop"].db.engine) as sql:
        theirs = _post(client, query, headers[role])
    assert sql.seen and theirs.get_json()["data"]["product"]["name"] == "Kettle"
    # What they rendered was not written where guests and customers read.
    assert _post(client, query).get_json()["data"]["product"]["name"] == "Teapot 0"
    assert _post(client, query, headers["customer"]).get_json()["data"]["product"]["name"] == "Teapot 0"


def test_an_update_reaches_signed_in_readers(client, headers, catalog):
    [product_id] = catalog(1)
    query = f'{{ product(id: "{product_id}") {{ name }} products(first: 5) {{ nodes {{ name }} }} }}'
    before = _post(client, query, headers["customer"]).get_json()["data"]
    assert before["product"]["name"] == "Teapot 0"
    renamed = client.patch(f"/api/v1/products/{product_id}", json={"name": "Kettle"}, headers=headers["staff"])
    assert renamed.status_code == 200
    after = _post(client, query, headers["customer"]).get_json()["data"]
    assert after["product"]["name"] == "Kettle" and [n["name"] for n in after["products"]["nodes"]] == ["Kettle"]


def test_a_get_with_the_query_given_twice_is_never_shared(app, client, headers, catalog):
    """Which of two `query` parameters runs is the GraphQL library's choice: such a text is not checked."""
    catalog(1)
    params = [("query", "{ products(first: 1) { nodes { name } } }"), ("query", "{ me { email } }")]
    assert client.get("/graphql", query_string=params, headers=headers["customer"]).status_code == 200
    with Statements(app.extensions["shop"].db.engine) as sql:
        assert client.get("/graphql", query_string=params, headers=headers["customer_b"]).status_code == 200
    assert sql.seen  # the first answer was not stored for the second caller


def test_a_revoked_token_is_refused_even_when_the_answer_is_cached(client, headers, catalog):
    catalog(2)
    query = "{ products(first: 2) { nodes { name } } }"
    assert _post(client, query, headers["customer"]).status_code == 200
    assert _post(client, query).status_code == 200  # cached, and read along with the rate limit
    assert client.post("/api/v1/auth/logout", headers=headers["customer"]).status_code in (200, 204)
    refused = _post(client, query, headers["customer"])
    assert refused.status_code == 401 and b"Teapot" not in refused.data

