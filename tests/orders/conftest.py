"""Fixtures for orders: a catalog to buy from, customers, staff, and request helpers."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.helpers import bearer, make_user

ORDERS = "/api/v1/orders"
ADDRESS = {"firstName": "Ada", "lastName": "Lovelace", "line1": "12 Analytical Row", "city": "London",
           "postalCode": "N1 9GU", "country": "GB"}


@pytest.fixture
def make_variant(app):
    """Create a product with one variant directly in the database; returns the variant id."""
    from models.catalog.tables import Product, ProductVariant

    def make(stock: int = 10, price: str = "12.50", currency: str = "EUR", name: str = "Teapot") -> uuid.UUID:
        with app.extensions["shop"].db.session() as session:
            product = Product(handle=f"p-{uuid.uuid4().hex[:10]}", name=name)
            session.add(product)
            session.flush()
            variant = ProductVariant(product_id=product.id, sku=f"SKU-{uuid.uuid4().hex[:10]}",
                                     price=Decimal(price), currency=currency, stock=stock)
            session.add(variant)
            session.flush()
            return variant.id
    return make


@pytest.fixture
def people(app):
    """A customer, another customer and a staff member, with their auth headers."""
    with app.extensions["shop"].db.session() as session:
        users = {role: make_user(session, role.split("_")[0]) for role in ("customer", "customer_other", "staff")}
    return {name: (user, bearer(app, user)) for name, user in users.items()}


def place(client, headers, variant_id, quantity=1, **extra):
    return client.post(ORDERS, json={"items": [{"variantId": str(variant_id), "quantity": quantity}],
                                     "shippingAddress": ADDRESS}, headers={**headers, **extra})


def stock_of(app, variant_id) -> tuple[int, int]:
    with app.extensions["shop"].db.engine.connect() as conn:
        return tuple(conn.execute(text("SELECT stock, reserved FROM product_variants WHERE id = :id"),
                                  {"id": variant_id}).one())


def status_of(app, order_id) -> str:
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT status FROM orders WHERE id = :id"), {"id": order_id}).scalar()


FULFILMENT = "fulfilment@example.com"


@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def order_worker(tmp_path_factory, storage_dir):
    """A real worker for order flows, its tasks in threads as `make run`'s `orders` worker: sandbox gateway and
    carrier, labels in a scratch folder."""
    from tests.conftest import start_worker

    process = start_worker(tmp_path_factory.mktemp("worker"), pool="threads", STORAGE_LOCAL_DIR=str(storage_dir),
                           FULFILLMENT_EMAIL=FULFILMENT)
    yield process
    process.stop()


def start_gunicorn(log_dir, workers: int = 2, worker_class: str = ""):
    """The app under gunicorn on a free loopback port (the settings' worker class unless one is given);
    `.url` is its base URL."""
    import socket
    import sys

    from tests.helpers import Process

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = Process([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                      log_dir / "gunicorn.log", env={"PORT": str(port), "HOST": "127.0.0.1",
                                                     "WEB_CONCURRENCY": str(workers),
                                                     "PROMETHEUS_MULTIPROC_DIR": str(log_dir / "prometheus"),
                                                     **({"WEB_WORKER_CLASS": worker_class} if worker_class else {})},
                      ready="Booting worker").start()
    process.url = f"http://127.0.0.1:{port}"
    return process
