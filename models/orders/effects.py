"""What each transition does besides changing the status (the spec's "Actions")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import outbox, task_names
from models.emails.actions import queue_email
from models.money import amount_text
from models.orders import stock
from models.orders.tables import Order, Payment, Refund, Return, Shipment
from models.users.tables import User

REFUND_TASK = task_names.REFUND_PAYMENT


@dataclass(frozen=True)
class Options:
    fulfillment_email: str  # who is told of every paid order ("" for nobody)
    tracking_url: str  # with {carrier} and {tracking}


_options: Options | None = None


def configure(*, fulfillment_email: str, tracking_url: str) -> None:
    """Set this process's options (the composition root does, from settings)."""
    global _options
    _options = Options(fulfillment_email, tracking_url)


def _configured() -> Options:
    if _options is None:
        raise RuntimeError("models.orders.effects is not configured: build the process with bootstrap(settings)")
    return _options


def email_context(session: Session, order: Order, **extra) -> dict:
    """The order as the email templates see it (a JSON snapshot)."""
    user = session.get(User, order.user_id)
    return {
        "order_id": str(order.id), "order_number": str(order.id)[:8].upper(), "first_name": user.first_name,
        "currency": order.currency, "total": amount_text(order.total, order.currency),
        "items": [{"name": item.product_name, "sku": item.sku, "quantity": item.quantity,
                   "line_total": amount_text(item.line_total, order.currency)} for item in order.items],
        **extra,
    }


def email_customer(session: Session, order: Order, template: str, **extra) -> None:
    user = session.get(User, order.user_id)
    queue_email(session, user.email, template, **email_context(session, order, **extra))


def payment_confirmed(session: Session, order: Order, data: dict) -> None:
    """Record the payment, allocate the reservation, confirm to the customer, tell fulfilment."""
    payment = session.get(Payment, uuid.UUID(data["paymentId"]))
    payment.status = "succeeded"
    payment.reference = data.get("reference") or payment.reference
    order.stock_state = "allocated"  # reserved units stay held, now for a paid order
    email_customer(session, order, "order_confirmation")
    if fulfilment := _configured().fulfillment_email:
        queue_email(session, fulfilment, "order_fulfilment", **email_context(session, order))


def payment_failed_or_timeout(session: Session, order: Order, data: dict) -> None:
    """Release the reservation and say why the order was cancelled."""
    stock.release(session, order)
    for payment in _payments(session, order, ("pending", "processing")):
        payment.status = "failed" if data.get("paymentFailed") else "cancelled"
        payment.failure_reason = data.get("why", "")
    email_customer(session, order, "order_cancelled", reason=data.get("why", ""))


def admin_cancellation(session: Session, order: Order, data: dict) -> None:
    """Put the allocation back and refund what was paid."""
    stock.release(session, order)
    refund_paid(session, order, "order cancelled")
    email_customer(session, order, "order_cancelled", reason=data.get("why", ""))


def items_shipped(session: Session, order: Order, data: dict) -> None:
    """Record carrier and tracking, take the items out of stock, email the tracking link."""
    shipment = session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    shipment.status = "in_transit"
    stock.take_out(session, order)
    tracking_url = _configured().tracking_url.format(carrier=shipment.carrier, tracking=shipment.tracking_number)
    email_customer(session, order, "order_shipped", carrier=shipment.carrier,
                   tracking_number=shipment.tracking_number, tracking_url=tracking_url)


def delivery_confirmed(session: Session, order: Order, data: dict) -> None:
    shipment = session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    if shipment is not None:
        shipment.status = "delivered"


def return_initiated(session: Session, order: Order, data: dict) -> None:
    """Record the return; the refund waits until the goods arrive."""
    session.add(Return(order_id=order.id, reason=data.get("why", "")))


def return_received(session: Session, order: Order, record: Return) -> None:
    """Goods are back: restock them and refund."""
    record.status = "received"
    record.received_at = func.now()
    stock.restock(session, order)
    refund_paid(session, order, "return received")


def refund_paid(session: Session, order: Order, reason: str) -> Refund | None:
    """Queue a refund of whatever was paid and not yet refunded."""
    payment = next(iter(_payments(session, order, ("succeeded",))), None)
    if payment is None:
        return None
    refunded = session.scalar(select(func.coalesce(func.sum(Refund.amount), 0))
                              .where(Refund.payment_id == payment.id)) or Decimal(0)
    if payment.amount - refunded <= 0:
        return None
    refund = Refund(id=uuid.uuid4(), order_id=order.id, payment_id=payment.id, provider=payment.provider,
                    amount=payment.amount - refunded, reason=reason)
    session.add(refund)
    outbox.enqueue(session, REFUND_TASK, refund_id=refund.id)
    return refund


def _payments(session: Session, order: Order, statuses) -> list[Payment]:
    return list(session.scalars(select(Payment).where(Payment.order_id == order.id, Payment.status.in_(statuses))
                                .order_by(Payment.created_at).with_for_update()))
