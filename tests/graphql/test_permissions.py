"""Each root field answers each role as its REST twin does: the same checks, with a code instead of a status."""

from __future__ import annotations

import uuid

import pytest

ROLES = ("guest", "customer", "customer_b", "staff", "admin", "admin_no_mfa")
OK, UNAUTH, FORBIDDEN, MISSING = "ok", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND"

# field → its query (with {order}, {job}, {product} filled in) and the outcome per role, in ROLES order
MATRIX = {
    "products": ("{ products(first: 5) { nodes { id } } }", (OK, OK, OK, OK, OK, OK)),
    "product": ('{ product(id: "{product}") { id } }', (OK, OK, OK, OK, OK, OK)),
    "categories": ("{ categories { id children { id } } }", (OK, OK, OK, OK, OK, OK)),
    "me": ("{ me { id email role } }", (UNAUTH, OK, OK, OK, OK, OK)),
    "orders": ("{ orders { nodes { id } } }", (UNAUTH, OK, OK, OK, OK, OK)),
    "order": ('{ order(id: "{order}") { id status } }', (UNAUTH, OK, MISSING, OK, OK, OK)),
    "importJobs": ("{ importJobs { nodes { id } } }", (UNAUTH, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN)),
    "importJob": ('{ importJob(id: "{job}") { id progress errors { row } } }',
                  (UNAUTH, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN)),
}


@pytest.fixture
def things(app, headers, catalog):
    """A product, an order of `customer`, and an import job."""
    from models.imports.tables import ImportJob
    from models.orders.tables import Order, OrderStatus

    [product_id] = catalog(1)
    with app.extensions["shop"].db.session() as session:
        order = Order(id=uuid.uuid4(), user_id=headers["users"]["customer"].id, status=OrderStatus.PENDING,
                      currency="EUR", subtotal=5, total=5)
        job = ImportJob(id=uuid.uuid4(), inbox="upload", source_key="k", filename="feed.csv")
        session.add_all([order, job])
    return {"product": product_id, "order": order.id, "job": job.id}


@pytest.mark.parametrize("field", MATRIX)
def test_permission_matrix(gql, headers, things, field):
    query, expected = MATRIX[field]
    for name, value in things.items():
        query = query.replace(f"{{{name}}}", str(value))
    outcomes = {}
    for role in ROLES:
        body = gql(query, headers[role])
        outcomes[role] = body["errors"][0]["extensions"]["code"] if body.get("errors") else OK
        if outcomes[role] == OK:
            assert body["data"][field] is not None
    assert outcomes == dict(zip(ROLES, expected, strict=True))


def test_customers_see_only_their_own_orders(gql, headers, things):
    own = gql("{ orders { nodes { id } } }", headers["customer"])["data"]["orders"]["nodes"]
    other = gql("{ orders { nodes { id } } }", headers["customer_b"])["data"]["orders"]["nodes"]
    everyone = gql("{ orders { nodes { id } } }", headers["staff"])["data"]["orders"]["nodes"]
    assert own == [{"id": str(things["order"])}] and other == [] and everyone == own


def test_refusals_carry_status_and_fields(gql, headers, things):
    error = gql("{ importJobs { nodes { id } } }", headers["admin_no_mfa"])["errors"][0]
    assert error["extensions"] == {"code": "FORBIDDEN", "status": 403, "fields": {"mfa": ["required"]}}
    assert error["path"] == ["importJobs"]
    error = gql("{ me { id } }")["errors"][0]
    assert error["extensions"]["status"] == 401 and error["message"] == "sign in to do this"
