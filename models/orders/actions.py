"""Order actions shared by the web layer and the tasks; each checks permissions itself."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from models import outbox, task_names
from models.money import amount_text
from models.errors import Conflict, InvalidRequest, NotFound
from models.orders import effects
from models.orders.history import actor_label, record
from models.orders.machine import CANCELLED, DELIVERED, PENDING, PROCESSING, RETURNED, SHIPPED, move
from models.orders.stock import reserve
from models.orders.tables import (BillingAddress, Order, OrderItem, Payment, Refund, Return, Shipment,
                                  ShippingAddress)
from models.users.permissions import SYSTEM, Actor, authorize
from models.users.tables import User

START_PAYMENT_TASK = task_names.START_PAYMENT
BUY_LABEL_TASK = task_names.BUY_LABEL


def checkout(session: Session, actor: Actor, items: list[dict], shipping_address: dict,
             billing_address: dict | None, provider: str) -> Order:
    """Place an order at database prices, reserving its stock; 409 naming variants that are short."""
    authorize(actor, "orders:create")
    wanted = Counter()
    for item in items:
        wanted[item["variant_id"]] += item["quantity"]
    variants = reserve(session, wanted)
    currencies = {variants[v].currency for v in wanted}
    if len(currencies) > 1:
        raise InvalidRequest("all items must be priced in one currency", {"items": ["mixed currencies"]})
    lines = [OrderItem(product_id=variants[v].product_id, variant_id=v, sku=variants[v].sku,
                       product_name=variants[v].product.name, unit_price=variants[v].price, quantity=quantity,
                       line_total=variants[v].price * quantity) for v, quantity in wanted.items()]
    subtotal = sum((line.line_total for line in lines), Decimal(0))
    order = Order(id=uuid.uuid4(), user_id=actor.user_id, status=PENDING, currency=currencies.pop(),
                  subtotal=subtotal, total=subtotal, items=lines,
                  shipping_address=ShippingAddress(**shipping_address),
                  billing_address=BillingAddress(**(billing_address or shipping_address)))
    order.current_payment = Payment(id=uuid.uuid4(), order_id=order.id, provider=provider, amount=order.total,
                                    currency=order.currency, status="pending")
    session.add_all([order, order.current_payment])
    record(session, order, "created", actor, to_status=PENDING, data={"total": str(order.total)})
    session.flush()
    return order


def _visible(session: Session, actor: Actor, order_id: uuid.UUID, lock: bool = False) -> Order:
    query = select(Order).where(Order.id == order_id)
    if not actor.can("orders:view_all"):
        authorize(actor, "orders:view_own")
        query = query.where(Order.user_id == actor.user_id)
    if lock:
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        raise NotFound("no such order")
    return order


def get_order(session: Session, actor: Actor, order_id: uuid.UUID) -> Order:
    """The order if the caller may see it; another customer's order is 404."""
    return _visible(session, actor, order_id)


def list_orders(session: Session, actor: Actor, limit: int, after: tuple | None) -> list[Order]:
    """Newest first: the caller's own, or everyone's for staff and up."""
    query = select(Order).options(selectinload(Order.items)).order_by(Order.created_at.desc(), Order.id.desc())
    if not actor.can("orders:view_all"):
        authorize(actor, "orders:view_own")
        query = query.where(Order.user_id == actor.user_id)
    if after is not None:
        query = query.where(func.row(Order.created_at, Order.id) < func.row(*after))
    return list(session.scalars(query.limit(limit)))


def latest_payment(session: Session, order: Order) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.order_id == order.id)
                          .order_by(Payment.created_at.desc()).limit(1))


def request_payment(session: Session, actor: Actor, order_id: uuid.UUID, method: str) -> Payment:
    """Start (or, while one is in flight, return) the order's payment; the outcome arrives later."""
    order = _visible(session, actor, order_id, lock=True)
    if order.status != PENDING:
        raise Conflict(f"an order that is {order.status} cannot be paid", {"status": [order.status]})
    payment = latest_payment(session, order)
    if payment.status == "processing":
        return payment
    if payment.status == "failed":  # the last attempt was refused: a new attempt gets new idempotency keys
        payment = Payment(id=uuid.uuid4(), order_id=order.id, provider=payment.provider, amount=order.total,
                          currency=order.currency)
        session.add(payment)
    payment.status = "processing"
    payment.method = method
    record(session, order, "payment.requested", actor, data={"paymentId": str(payment.id), "method": method})
    outbox.enqueue(session, START_PAYMENT_TASK, payment_id=payment.id)
    return payment


def cancel(session: Session, actor: Actor, order_id: uuid.UUID, why: str) -> Order:
    """Customer while pending; staff or admin while processing."""
    order = _visible(session, actor, order_id, lock=True)
    if order.status == PROCESSING:
        authorize(actor, "orders:update")
    move(session, order, CANCELLED, actor, why or "cancelled on request")
    return order


def request_shipment(session: Session, actor: Actor, order_id: uuid.UUID, service: str, carrier: str) -> Shipment:
    """Staff: buy a label (in a task); the order moves to shipped once the carrier answers."""
    authorize(actor, "orders:update")
    order = _visible(session, actor, order_id, lock=True)
    if order.status != PROCESSING:
        raise Conflict(f"an order that is {order.status} cannot be shipped",
                       {"status": [f"{order.status} -> shipped is not allowed"]})
    shipment = session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    if shipment is None:
        shipment = Shipment(id=uuid.uuid4(), order_id=order.id, carrier=carrier, service=service,
                            requested_by=actor_label(actor))
        session.add(shipment)
        record(session, order, "shipment.requested", actor, data={"shipmentId": str(shipment.id)})
        outbox.enqueue(session, BUY_LABEL_TASK, shipment_id=shipment.id)
    return shipment


def label_bought(session: Session, shipment_id: uuid.UUID, tracking_number: str, label_key: str) -> None:
    """The carrier sold us a label: record it and move the order to shipped (idempotent)."""
    shipment = session.get(Shipment, shipment_id, with_for_update=True)
    order = session.get(Order, shipment.order_id, with_for_update=True)
    if order.status != PROCESSING:
        return
    shipment.tracking_number, shipment.label_key = tracking_number, label_key
    move(session, order, SHIPPED, SYSTEM, "label bought", carrier=shipment.carrier,
         trackingNumber=tracking_number, service=shipment.service)


def deliver(session: Session, actor: Actor, order_id: uuid.UUID, why: str = "delivery confirmed") -> Order:
    """Staff or the tracking job: the parcel arrived."""
    authorize(actor, "orders:update")
    order = _visible(session, actor, order_id, lock=True)
    move(session, order, DELIVERED, actor, why)
    return order


def start_return(session: Session, actor: Actor, order_id: uuid.UUID, why: str) -> Order:
    """Customer (own order) or staff: the goods are on their way back."""
    order = _visible(session, actor, order_id, lock=True)
    move(session, order, RETURNED, actor, why or "return initiated")
    return order


def receive_return(session: Session, actor: Actor, order_id: uuid.UUID) -> Return:
    """Staff: the returned goods arrived; restock and refund."""
    authorize(actor, "orders:update")
    order = _visible(session, actor, order_id, lock=True)
    found = session.scalar(select(Return).where(Return.order_id == order.id).with_for_update())
    if found is None or found.status != "requested":
        raise Conflict("no return is waiting for this order", {"status": [order.status]})
    effects.return_received(session, order, found)
    record(session, order, "return.received", actor, data={"returnId": str(found.id)})
    return found


def payment_error(session: Session, payment: Payment, error: str) -> None:
    """The provider refused the request itself (not a decline): the order stays pending for another try."""
    payment.status, payment.failure_reason = "failed", error[:2000]
    record(session, session.get(Order, payment.order_id), "payment.error", "payments",
           data={"paymentId": str(payment.id), "error": error[:500]})


def lock_payment(session: Session, payment_id: uuid.UUID) -> Payment | None:
    """The payment locked with its order, in one statement (the order's row first, as cancel takes them).

    The order's customer and items come in the same round trip, unlocked: the emails a payment's outcome
    queues read them, and find them in the session instead of asking again.

    Locked once per transaction: a second call in the same transaction (the sandbox's event processed
    inside `start_payment`) returns the rows this transaction already holds and has kept up to date.
    """
    held = session.info.setdefault("locked_payments", {})
    transaction = session.get_transaction()
    if transaction is not None and held.get(payment_id, (None,))[0] is transaction:
        return held[payment_id][2]
    # FOR UPDATE OF orders, payments: PostgreSQL locks each result row's order, then its payment
    found = session.execute(select(Order, Payment, User).join(Payment, Payment.order_id == Order.id)
                            .outerjoin(User, User.id == Order.user_id).where(Payment.id == payment_id)
                            .options(joinedload(Order.items))
                            .with_for_update(of=(Order, Payment))
                            .execution_options(populate_existing=True)).unique().first()
    if found is None:
        return None
    order, payment, user = found
    # the rows are kept referenced, so the identity map keeps them for this transaction
    held[payment_id] = (session.get_transaction(), order, payment, user)
    return payment


def payment_outcome(session: Session, payment_id: uuid.UUID, succeeded: bool, reference: str, why: str = "",
                    source: str = "payments", timed_out: bool = False) -> str:
    """Apply what the provider says about a payment, once; returns what happened."""
    payment = lock_payment(session, payment_id)
    order = session.get(Order, payment.order_id)
    if payment.status in ("succeeded", "failed"):
        return f"already {payment.status}"  # a "cancelled" payment (order timed out) may still succeed late
    if succeeded and order.status == PENDING:
        move(session, order, PROCESSING, source, "payment confirmed", paymentId=str(payment.id),
             reference=reference)
        return "paid"
    if succeeded:  # money arrived for an order that was cancelled meanwhile: give it back
        payment.status, payment.reference = "succeeded", reference
        record(session, order, "payment.late", source, data={"paymentId": str(payment.id), "reference": reference})
        effects.refund_paid(session, order, "payment arrived after cancellation")
        return "refunded late payment"
    if order.status == PENDING:
        move(session, order, CANCELLED, source, why or "payment failed", paymentFailed=not timed_out,
             reference=reference)
        return "declined"
    payment.status = "failed"
    return "failed"


def refund_settled(session: Session, refund_id: uuid.UUID, reference: str, succeeded: bool,
                   source: str = "payments") -> bool:
    """Record the provider's answer to a refund, once; emails the customer when it succeeded."""
    refund = session.get(Refund, refund_id, with_for_update=True)
    if refund.status in ("succeeded", "failed"):
        return False
    refund.reference = reference or refund.reference
    refund.status = "succeeded" if succeeded else "failed"
    order = session.get(Order, refund.order_id)
    record(session, order, f"refund.{refund.status}", source,
           data={"refundId": str(refund.id), "reference": refund.reference, "amount": str(refund.amount)})
    if succeeded:
        effects.email_customer(session, order, "order_refunded", amount=amount_text(refund.amount, order.currency))
    return True


def expire_unpaid(session: Session, older_than: timedelta, batch: int = 200) -> tuple[int, list[uuid.UUID]]:
    """Cancel pending orders not paid within `older_than`, releasing their stock.

    Returns how many were cancelled, and the payments still in flight at the
    provider: those orders wait until the provider has been asked (see
    `tasks.payments.settle_expired_payment`), so money taken is never lost.
    """
    orders = session.scalars(select(Order).where(Order.status == PENDING,
                                                 Order.created_at < func.now() - older_than)
                             .order_by(Order.created_at).limit(batch).with_for_update(skip_locked=True)).all()
    in_flight = []
    for order in orders:
        payment = latest_payment(session, order)
        if payment is not None and payment.status == "processing" and payment.reference:
            in_flight.append(payment.id)
        else:
            move(session, order, CANCELLED, SYSTEM, "payment timeout")
    return len(orders) - len(in_flight), in_flight
