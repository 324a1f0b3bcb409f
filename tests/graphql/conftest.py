"""Fixtures for GraphQL: users of each role, a small catalog, and posting a query."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.helpers import bearer, make_user


@pytest.fixture
def headers(app):
    """Auth headers by role; `guest` sends none, `admin_no_mfa` holds a token without MFA."""
    with app.extensions["shop"].db.session() as session:
        users = {name: make_user(session, name.removesuffix("_b")) for name in ("customer", "customer_b", "staff",
                                                                                  "admin")}
    found = {role: bearer(app, user) for role, user in users.items()}
    found["guest"] = {}
    found["admin_no_mfa"] = bearer(app, users["admin"], mfa=False)
    found["users"] = users
    return found


@pytest.fixture
def gql(client):
    """POST a query; returns the JSON body."""
    def run(query: str, headers: dict | None = None, **variables) -> dict:
        response = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers or {})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()
    return run


@pytest.fixture
def catalog(app):
    """`make(n)`: n products in one category, two variants and two images each; returns their ids."""
    from models.catalog.tables import Category, Product, ProductImage, ProductVariant

    def make(count: int) -> list[uuid.UUID]:
        with app.extensions["shop"].db.session() as session:
            category = Category(name=f"Kitchen {uuid.uuid4().hex[:6]}", path="Kitchen")
            session.add(category)
            session.flush()
            ids = []
            for n in range(count):
                product = Product(handle=f"p-{uuid.uuid4().hex[:10]}", name=f"Teapot {n}", category_id=category.id,
                                  min_price=Decimal("9.5"), in_stock=True)
                session.add(product)
                session.flush()
                session.add_all([ProductVariant(product_id=product.id, sku=f"SKU-{uuid.uuid4().hex[:10]}",
                                                price=Decimal("9.5") + v, currency="EUR", stock=3) for v in range(2)])
                session.add_all([ProductImage(product_id=product.id, storage_key=f"products/{product.id}/{i}.png",
                                              content_type="image/png", alt_text=f"view {i}", position=i)
                                 for i in range(2)])
                ids.append(product.id)
            return ids
    return make
