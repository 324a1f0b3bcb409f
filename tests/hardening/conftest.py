"""People and a small catalog for the hardening tests."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.helpers import bearer, make_user
from tests.identity.conftest import make_app  # noqa: F401  (apps with changed settings)


@pytest.fixture
def people(app):
    """A customer, a staff member and an admin (whose token records MFA), with their auth headers."""
    with app.extensions["shop"].db.session() as session:
        users = {role: make_user(session, role) for role in ("customer", "staff", "admin")}
    return {role: (user, bearer(app, user)) for role, user in users.items()}


@pytest.fixture
def variant(app):
    """A product with one variant in stock; returns the variant id."""
    from models.catalog.tables import Product, ProductVariant

    with app.extensions["shop"].db.session() as session:
        product = Product(handle=f"p-{uuid.uuid4().hex[:10]}", name="Teapot")
        session.add(product)
        session.flush()
        row = ProductVariant(product_id=product.id, sku=f"SKU-{uuid.uuid4().hex[:10]}", price=Decimal("12.50"),
                             currency="EUR", stock=10)
        session.add(row)
        session.flush()
        return row.id
