"""The life of an order through a real worker, with the sandbox gateway and carrier."""

from __future__ import annotations

from sqlalchemy import text

from tests.helpers import mails, wait_for, wait_for_mail
from tests.orders.conftest import FULFILMENT, ORDERS, place, status_of, stock_of


def rows(app, sql, **params):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def wait_status(app, order_id, status, timeout=15):
    wait_for(lambda: status_of(app, order_id) == status, timeout, message=f"order {status}")


def pay(client, headers, order_id, method="sandbox_success"):
    response = client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": method}, headers=headers)
    assert response.status_code == 202, response.json
    return response.json


def test_pay_ship_deliver_return_and_refund(celery_app, order_worker, app, client, people, make_variant, mail_dir,
                                            storage_dir):
    customer, headers = people["customer"]
    _, staff = people["staff"]
    variant = make_variant(stock=5, price="20.00")
    order_id = place(client, headers, variant, 2).json["id"]

    assert pay(client, headers, order_id)["status"] == "processing"
    wait_status(app, order_id, "processing")
    confirmation = wait_for_mail(mail_dir, customer.email)
    assert "is confirmed" in confirmation["Subject"] and "40.00 EUR" in confirmation.get_body(("plain",)).get_content()
    assert wait_for_mail(mail_dir, FULFILMENT)["Subject"].startswith("New paid order")
    assert rows(app, "SELECT status, reference LIKE 'pi_sbx_%' FROM payments") == [("succeeded", True)]
    assert stock_of(app, variant) == (5, 2)  # allocated: still held, not yet gone

    shipment = client.post(f"{ORDERS}/{order_id}/shipments", json={"service": "ground"}, headers=staff)
    assert shipment.status_code == 202 and shipment.json["status"] == "label_pending"
    wait_status(app, order_id, "shipped")
    [(tracking, label_key, requested_by)] = rows(app, "SELECT tracking_number, label_key, requested_by FROM shipments")
    assert requested_by == f"user:{people['staff'][0].id}"
    assert (storage_dir / label_key).read_bytes().startswith(b"%PDF")
    assert stock_of(app, variant) == (3, 0)
    shipped = wait_for(lambda: [m for m in mails(mail_dir, customer.email) if "on its way" in m["Subject"]])[0]
    assert tracking in shipped.get_body(("html",)).get_content()

    celery_app.send_task("tasks.shipping.poll_tracking")
    wait_status(app, order_id, "delivered")

    returned = client.post(f"{ORDERS}/{order_id}/returns", json={"reason": "too small"}, headers=headers)
    assert returned.status_code == 200 and returned.json["status"] == "returned"
    assert client.post(f"{ORDERS}/{order_id}/returns/received", headers=staff).json["status"] == "received"
    wait_for(lambda: rows(app, "SELECT status FROM refunds") == [("succeeded",)], message="the refund")
    refund_mail = wait_for(lambda: [m for m in mails(mail_dir, customer.email) if "refund" in m["Subject"]])[0]
    assert "40.00 EUR" in refund_mail["Subject"]
    assert stock_of(app, variant) == (5, 0)

    events = client.get(f"{ORDERS}/{order_id}/events", headers=headers).json["items"]
    moves = [(e["fromStatus"], e["toStatus"]) for e in events if e["toStatus"]]
    assert moves == [(None, "pending"), ("pending", "processing"), ("processing", "shipped"),
                     ("shipped", "delivered"), ("delivered", "returned")]
    kinds = [e["kind"] for e in events]
    assert {"payment.requested", "payment.started", "return.received", "refund.succeeded"} <= set(kinds)
    assert app.test_cli_runner().invoke(args=["orders", "verify-events"]).exit_code == 0


def test_a_declined_payment_cancels_and_releases_stock(order_worker, app, client, people, make_variant, mail_dir):
    customer, headers = people["customer"]
    variant = make_variant(stock=3)
    order_id = place(client, headers, variant, 3).json["id"]
    assert stock_of(app, variant) == (3, 3)
    pay(client, headers, order_id, "sandbox_decline")
    wait_status(app, order_id, "cancelled")
    assert stock_of(app, variant) == (3, 0)
    assert rows(app, "SELECT status, failure_reason FROM payments") == [("failed", "Your card was declined.")]
    assert "was cancelled" in wait_for_mail(mail_dir, customer.email)["Subject"]


def test_unpaid_orders_time_out_and_release_stock(celery_app, order_worker, app, client, people, make_variant):
    _, headers = people["customer"]
    variant = make_variant(stock=4)
    stale = place(client, headers, variant, 2).json["id"]
    fresh = place(client, headers, variant, 1).json["id"]
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text("UPDATE orders SET created_at = now() - interval '31 minutes' WHERE id = :id"),
                     {"id": stale})
    celery_app.send_task("tasks.payments.expire_unpaid_orders")
    wait_status(app, stale, "cancelled")
    assert status_of(app, fresh) == "pending" and stock_of(app, variant) == (4, 1)
    [event] = [e for e in client.get(f"{ORDERS}/{stale}/events", headers=headers).json["items"]
               if e["toStatus"] == "cancelled"]
    assert event["actor"] == "system" and event["reason"] == "payment timeout"


def test_staff_cancelling_a_paid_order_refunds_it(order_worker, app, client, people, make_variant, mail_dir):
    customer, headers = people["customer"]
    variant = make_variant(stock=2, price="9.99")
    order_id = place(client, headers, variant, 1).json["id"]
    pay(client, headers, order_id)
    wait_status(app, order_id, "processing")
    response = client.post(f"{ORDERS}/{order_id}/cancel", json={"reason": "out of stock in warehouse"},
                           headers=people["staff"][1])
    assert response.status_code == 200 and response.json["status"] == "cancelled"
    wait_for(lambda: rows(app, "SELECT status, amount::text FROM refunds") == [("succeeded", "9.9900")],
             message="the refund")
    assert stock_of(app, variant) == (2, 0)
    wait_for(lambda: any("refund" in m["Subject"] for m in mails(mail_dir, customer.email)), message="refund mail")



def test_a_refused_payment_request_can_be_retried(order_worker, app, client, people, make_variant, mail_dir):
    customer, headers = people["customer"]
    order_id = place(client, headers, make_variant(stock=1), 1).json["id"]
    first = pay(client, headers, order_id, "no_such_method")
    wait_for(lambda: rows(app, "SELECT status FROM payments WHERE id = :id", id=first["id"]) == [("failed",)],
             message="the refused attempt")
    assert status_of(app, order_id) == "pending"  # not a decline: the order waits for another try
    second = pay(client, headers, order_id)
    assert second["id"] != first["id"]
    wait_status(app, order_id, "processing")
    kinds = [e["kind"] for e in client.get(f"{ORDERS}/{order_id}/events", headers=headers).json["items"]]
    assert kinds.count("payment.requested") == 2 and "payment.error" in kinds


def test_tracking_polls_every_shipped_order_page_by_page(celery_app, order_worker, app, client, people, make_variant):
    """More shipped orders than one page holds: the task pages on by order id until it has seen them all."""
    _, headers = people["customer"]
    _, staff = people["staff"]
    variant = make_variant(stock=10, price="5.00")
    orders = []
    for _ in range(3):
        order_id = place(client, headers, variant, 1).json["id"]
        pay(client, headers, order_id)
        wait_status(app, order_id, "processing")
        assert client.post(f"{ORDERS}/{order_id}/shipments", json={"service": "ground"},
                           headers=staff).status_code == 202
        orders.append(order_id)
    for order_id in orders:
        wait_status(app, order_id, "shipped")

    celery_app.send_task("tasks.shipping.poll_tracking", kwargs={"batch": 1})
    for order_id in orders:
        wait_status(app, order_id, "delivered")
