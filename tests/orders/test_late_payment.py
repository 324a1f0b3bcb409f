"""A payment that succeeds after its order timed out is refunded (no worker: outcomes applied directly)."""

from __future__ import annotations

from sqlalchemy import text

from tests.orders.conftest import place, status_of
from tests.orders.test_flow import pay, rows


def test_money_arriving_after_the_timeout_is_refunded(app, client, people, make_variant):
    from datetime import timedelta

    from models.orders import actions

    _, headers = people["customer"]
    order_id = place(client, headers, make_variant(stock=1, price="7.00"), 1).json["id"]
    pay(client, headers, order_id)  # no worker in this module: the outcome is applied by hand below
    with app.extensions["shop"].db.session() as session:
        session.execute(text("UPDATE orders SET created_at = now() - interval '1 hour'"))
        assert actions.expire_unpaid(session, timedelta(minutes=30)) == (1, [])
    [(payment_id, status)] = rows(app, "SELECT id, status FROM payments")
    assert status == "cancelled" and status_of(app, order_id) == "cancelled"
    with app.extensions["shop"].db.session() as session:
        assert actions.payment_outcome(session, payment_id, True, "pi_late") == "refunded late payment"
    assert rows(app, "SELECT p.status, r.status, r.amount::text FROM refunds r JOIN payments p ON p.id = r.payment_id"
                ) == [("succeeded", "pending", "7.0000")]
    assert status_of(app, order_id) == "cancelled"
