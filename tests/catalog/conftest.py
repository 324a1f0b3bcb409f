"""Fixtures for the catalog: users of every role with their headers, and quick product builders."""

from __future__ import annotations

import pytest

from tests.helpers import bearer, make_user
from web.catalog.fast import CachedPages

API = "/api/v1"


@pytest.fixture
def headers(app):
    """Auth headers by role; `guest` sends none, `admin_no_mfa` holds a token without MFA."""
    db = app.extensions["shop"].db
    with db.session() as session:
        users = {role: make_user(session, role) for role in ("customer", "staff", "admin", "super_admin")}
    found = {role: bearer(app, user) for role, user in users.items()}
    found["guest"] = {}
    found["admin_no_mfa"] = bearer(app, users["admin"], mfa=False)
    return found


def engines(app) -> tuple:
    """The app's engines: its sessions' and the catalog reads' (models.db.Database.reads)."""
    db = app.extensions["shop"].db
    return db.engine, db.reads


def variant(sku: str, price: str = "10.00", stock: int = 5, currency: str = "EUR") -> dict:
    return {"sku": sku, "price": price, "currency": currency, "stock": stock}


@pytest.fixture
def create_product(client, headers):
    """POST a product as admin and return its body; fails the test on any other answer."""
    def create(name: str = "Plain mug", **fields) -> dict:
        response = client.post(f"{API}/products", json={"name": name, **fields}, headers=headers["admin"])
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return create


@pytest.fixture
def create_category(client, headers):
    def create(name: str, parent_id: str | None = None) -> dict:
        response = client.post(f"{API}/categories", json={"name": name, "parentId": parent_id},
                               headers=headers["admin"])
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return create


def index_now(*product_ids: str) -> None:
    """Run the indexing task's body in this process (what the worker does), for tests not about the worker."""
    from tasks.search import index_products
    index_products(product_ids=list(product_ids))


class Passes:
    """Counts the requests the layer hands to the Flask app behind it."""

    def __init__(self, app):
        self.layer = app.wsgi_app
        assert isinstance(self.layer, CachedPages)
        self.inner, self.count = self.layer.app, 0
        self.layer.app = self

    def __call__(self, environ, start_response):
        self.count += 1
        return self.inner(environ, start_response)


@pytest.fixture
def passes(app):
    counter = Passes(app)
    yield counter
    counter.layer.app = counter.inner
