"""The transition table: every move off the diagram is a 409; the history replays to the status."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from models.errors import Conflict
from models.orders.machine import move
from models.orders.tables import Order, OrderStatus
from tests.models.test_order_machine import DIAGRAM
from tests.orders.conftest import ORDERS, place, status_of



ILLEGAL = [(a, b) for a, b in itertools.product(OrderStatus, OrderStatus) if (str(a), str(b)) not in DIAGRAM]


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_other_move_is_a_conflict(app, people, source, target):
    user, _ = people["customer"]
    with app.extensions["shop"].db.session() as session:
        order = Order(id=uuid.uuid4(), user_id=user.id, status=source, currency="EUR", subtotal=Decimal(1),
                      total=Decimal(1))
        session.add(order)
        session.flush()
        with pytest.raises(Conflict) as raised:
            move(session, order, target, "test")
        assert f"{source} -> {target}" in raised.value.errors["status"][0]
        assert order.status == source and list(order.events) == []


def test_illegal_moves_over_http_are_409(client, people, make_variant):
    _, customer = people["customer"]
    _, staff = people["staff"]
    order_id = place(client, customer, make_variant()).json["id"]
    assert client.post(f"{ORDERS}/{order_id}/deliver", json={}, headers=staff).status_code == 409
    assert client.post(f"{ORDERS}/{order_id}/shipments", json={}, headers=staff).status_code == 409
    assert client.post(f"{ORDERS}/{order_id}/returns", json={}, headers=customer).status_code == 409
    assert client.post(f"{ORDERS}/{order_id}/returns/received", headers=staff).status_code == 409
    assert client.post(f"{ORDERS}/{order_id}/cancel", json={}, headers=customer).status_code == 200
    assert client.post(f"{ORDERS}/{order_id}/cancel", json={}, headers=customer).status_code == 409
    assert client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"},
                       headers=customer).status_code == 409


def test_only_staff_cancel_a_processing_order(app, client, people, make_variant):
    _, customer = people["customer"]
    order_id = place(client, customer, make_variant()).json["id"]
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 'processing' WHERE id = :id"), {"id": order_id})
    assert client.post(f"{ORDERS}/{order_id}/cancel", json={}, headers=customer).status_code == 403
    assert status_of(app, order_id) == "processing"
    assert client.post(f"{ORDERS}/{order_id}/cancel", json={}, headers=people["staff"][1]).status_code == 200


def test_verify_events_reports_an_order_whose_status_disagrees(app, client, people, make_variant):
    _, customer = people["customer"]
    kept = place(client, customer, make_variant()).json["id"]
    client.post(f"{ORDERS}/{kept}/cancel", json={"reason": "changed my mind"}, headers=customer)
    tampered = place(client, customer, make_variant()).json["id"]
    runner = app.test_cli_runner()
    assert runner.invoke(args=["orders", "verify-events"]).exit_code == 0
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 'shipped' WHERE id = :id"), {"id": tampered})
    result = runner.invoke(args=["orders", "verify-events"])
    assert result.exit_code == 1
    assert f"{tampered}: stored shipped, events say pending" in result.output and kept not in result.output


def test_customers_cannot_ship_deliver_or_receive_returns(client, people, make_variant):
    _, customer = people["customer"]
    order_id = place(client, customer, make_variant()).json["id"]
    for action in ("shipments", "deliver", "returns/received"):
        assert client.post(f"{ORDERS}/{order_id}/{action}", json={}, headers=customer).status_code == 403, action
