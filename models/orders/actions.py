"""Order actions shared by the web layer and the tasks; each checks permissions itself."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace

from sqlalchemy import ARRAY, Text, bindparam, cast, func, insert, literal_column, select, true, update
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from models import outbox, task_names
from models.outbox import OutboxMessage
from models.money import amount_text
from models.errors import Conflict, InvalidRequest, NotFound
from models.orders import effects
from models.orders.history import actor_label, record
from models.orders.machine import CANCELLED, DELIVERED, PENDING, PROCESSING, RETURNED, SHIPPED, move
from models.orders.stock import marking_ctes, queue_window, reserve
from models.prepared import prepared
from models.orders.tables import (BillingAddress, Order, OrderEvent, OrderItem, OrderStatus, Payment, Refund,
                                  Return, Shipment, ShippingAddress)
from models.realtime import announce_order_event
from models.users.permissions import SYSTEM, Actor, authorize
from models.users.tables import User

START_PAYMENT_TASK = task_names.START_PAYMENT
BUY_LABEL_TASK = task_names.BUY_LABEL


@dataclass(slots=True)
class Placed:
    """An order as checkout wrote it: what its response shows, without loading it back through the ORM."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    currency: str
    subtotal: Decimal
    shipping_total: Decimal
    tax_total: Decimal
    total: Decimal
    items: list[SimpleNamespace]
    shipping_address: SimpleNamespace
    billing_address: SimpleNamespace
    current_payment: SimpleNamespace
    created_at: datetime


def checkout(session: Session, actor: Actor, items: list[dict], shipping_address: dict,
             billing_address: dict | None, provider: str) -> Placed:
    """Place an order at database prices, reserving its stock; 409 naming variants that are short.

    Two Core statements instead of the unit of work: the reservation (lock, check and update in one), and
    one INSERT … WITH for the order, its lines, addresses, payment, `created` event and the products'
    search marks (with their variant facts refreshed); the event is handed to the real-time broadcaster
    as written. They run on the session's connection (its transaction), skipping the ORM's per-statement
    work: nothing is pending in the session for them to flush.
    """
    authorize(actor, "orders:create")
    wanted = Counter()
    for item in items:
        wanted[item["variant_id"]] += item["quantity"]
    variants = reserve(session, wanted, index=False)  # the products' search marks ride in the INSERT below
    currencies = {variants[v].currency for v in wanted}
    if len(currencies) > 1:
        raise InvalidRequest("all items must be priced in one currency", {"items": ["mixed currencies"]})
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    lines = [{"order_id": order_id, "product_id": variants[v].product_id, "variant_id": v, "sku": variants[v].sku,
              "product_name": variants[v].product_name, "unit_price": variants[v].price, "quantity": quantity,
              "line_total": variants[v].price * quantity} for v, quantity in wanted.items()]
    subtotal = sum((line["line_total"] for line in lines), Decimal(0))
    currency = currencies.pop()
    shipping = {name: shipping_address.get(name) for name in ADDRESS_FIELDS}
    billing = {name: (billing_address or shipping_address).get(name) for name in ADDRESS_FIELDS}
    event = {"order_id": order_id, "kind": "created", "actor": actor_label(actor), "from_status": None,
             "to_status": PENDING, "reason": "", "data": {"total": str(subtotal)}}
    # Parameter names never match a column's: SQLAlchemy would add such a key to a DML statement's columns.
    row = session.connection().execute(_place_statement(), {
        "placed_order": order_id, "placed_user": actor.user_id, "placed_currency": currency,
        "placed_subtotal": subtotal, "placed_payment": payment_id, "placed_provider": provider,
        **{f"lines_{name}": [line[name] for line in lines] for name in ITEM_FIELDS},
        **{f"ship_{name}": value for name, value in shipping.items()},
        **{f"bill_{name}": value for name, value in billing.items()},
        "event_kind": event["kind"], "event_actor": event["actor"], "event_data": event["data"],
        "ids": sorted({str(line["product_id"]) for line in lines})}).one()
    queue_window(session, row.opened_window)
    announce_order_event(session, actor.user_id, order_id, {**event, "id": row.event_id, "created_at": row.created_at})
    payment = SimpleNamespace(id=payment_id, provider=provider, status="pending", method="", reference=None,
                              amount=subtotal, currency=currency)
    return Placed(id=order_id, user_id=actor.user_id, status=PENDING, currency=currency, subtotal=subtotal,
                  shipping_total=row.shipping_total, tax_total=row.tax_total, total=subtotal,
                  items=[SimpleNamespace(**line) for line in lines], shipping_address=SimpleNamespace(**shipping),
                  billing_address=SimpleNamespace(**billing), current_payment=payment, created_at=row.created_at)


ADDRESS_FIELDS = ("first_name", "last_name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
ITEM_FIELDS = ("product_id", "variant_id", "sku", "product_name", "unit_price", "quantity", "line_total")


@lru_cache(maxsize=1)
def _place_statement():
    """The order and everything it is made of in one INSERT … WITH, built once.

    The foreign keys are checked at the end of the statement, when the order row exists. Bound parameters
    carry the columns' types, so the addresses are encrypted as the ORM would.
    """
    orders, order_id = Order.__table__, bindparam("placed_order", type_=Order.id.type)
    order = insert(orders).values(id=order_id, user_id=bindparam("placed_user"), status=PENDING,
                                  currency=bindparam("placed_currency"), subtotal=bindparam("placed_subtotal"),
                                  total=bindparam("placed_subtotal")) \
        .returning(orders.c.created_at, orders.c.shipping_total, orders.c.tax_total).cte("placed_order")
    # The lines from one array per column, inserted in their order (the order's lines read back in it). Not a
    # multi-row VALUES: SQLAlchemy does not cache that statement, and compiling it was 9 % of the web's time.
    lines = OrderItem.__table__
    items = insert(lines).from_select(["order_id", *ITEM_FIELDS], select(order_id, *(
        func.unnest(cast(bindparam(f"lines_{name}", type_=ARRAY(lines.c[name].type)), ARRAY(lines.c[name].type)))
        for name in ITEM_FIELDS))).returning(lines.c.id).cte("placed_lines")
    addresses = [insert(table).values(order_id=order_id, **{name: bindparam(f"{prefix}_{name}")
                                                            for name in ADDRESS_FIELDS})
                 .returning(table.c.order_id).cte(f"placed_{prefix}")
                 for table, prefix in ((ShippingAddress.__table__, "ship"), (BillingAddress.__table__, "bill"))]
    payments = Payment.__table__
    payment = insert(payments).values(id=bindparam("placed_payment"), order_id=order_id,
                                      provider=bindparam("placed_provider"), amount=bindparam("placed_subtotal"),
                                      currency=bindparam("placed_currency"), status="pending") \
        .returning(payments.c.id).cte("placed_payment")
    event = _event_insert(order_id, PENDING).cte("placed_event")
    # The products marked for indexing, their variant facts refreshed (models.orders.stock.MARK_PENDING)
    # and the search window opened when this is its first change
    refreshed, marked, opened = marking_ctes()
    window = select(opened.c.opened).scalar_subquery().label("opened_window")
    return prepared(select(order.c.created_at, order.c.shipping_total, order.c.tax_total, event.c.id.label("event_id"),
                           window).select_from(order.join(event, true()))
                    .add_cte(items, *addresses, payment, refreshed, marked, opened))


def _visible(session: Session, actor: Actor, order_id: uuid.UUID, lock: bool = False) -> Order:
    query = _visible_to(actor, select(Order).where(Order.id == order_id))
    if lock:
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        raise NotFound("no such order")
    return order


def _own_only(actor: Actor) -> bool:
    """Whether the caller sees only their own orders (refused if not even those); staff and up see all."""
    if actor.can("orders:view_all"):
        return False
    authorize(actor, "orders:view_own")
    return True


def _visible_to(actor: Actor, query):
    """`query` (of orders) narrowed to what the caller may see: another customer's order is not found."""
    return query.where(Order.user_id == actor.user_id) if _own_only(actor) else query


def get_order(session: Session, actor: Actor, order_id: uuid.UUID) -> Order:
    """The order if the caller may see it; another customer's order is 404."""
    return _visible(session, actor, order_id)


def list_orders(session: Session, actor: Actor, limit: int, after: tuple | None) -> list[Order]:
    """Newest first: the caller's own, or everyone's for staff and up; with their items."""
    query = select(Order).options(selectinload(Order.items)).order_by(Order.created_at.desc(), Order.id.desc())
    query = _visible_to(actor, query)
    if after is not None:
        query = query.where(func.row(Order.created_at, Order.id) < func.row(*after))
    return list(session.scalars(query.limit(limit)))


def order_page(session: Session, actor: Actor, limit: int, after: tuple | None) -> list[Placed]:
    """`list_orders` with everything an order's page shows, in one statement: its items, shipping and billing
    addresses and latest payment (as `latest_payment` picks it).

    The ORM's page took five statements (the orders, three `selectinload` passes, the latest payments) and
    built an object per row: the costliest request of the mixed load (4.2 ms of CPU for ten orders on a quiet
    machine). The items come as one JSON array per order, their amounts as text (exact decimals); the
    addresses' columns are read through their encrypted type, so they arrive decrypted.
    """
    own = _own_only(actor)
    rows = session.execute(_page_statement(own, after is not None),
                           {"limit": limit, "owner": actor.user_id if own else None,
                            **({"after_at": after[0], "after_id": after[1]} if after else {})})
    return [Placed(
        id=row.id, user_id=row.user_id, status=row.status, currency=row.currency, subtotal=row.subtotal,
        shipping_total=row.shipping_total, tax_total=row.tax_total, total=row.total, created_at=row.created_at,
        items=[SimpleNamespace(variant_id=item[0], product_id=item[1], sku=item[2], product_name=item[3],
                               unit_price=Decimal(item[4]), quantity=item[5], line_total=Decimal(item[6]))
               for item in row.items],
        shipping_address=_page_part(row, "s_", ADDRESS_FIELDS),
        billing_address=_page_part(row, "b_", ADDRESS_FIELDS),
        current_payment=_page_part(row, "p_", PAYMENT_FIELDS)) for row in rows]


def _page_part(row, prefix: str, fields: tuple[str, ...]) -> SimpleNamespace | None:
    """The joined row's columns named `prefix` + field, or None where the outer join found none."""
    values = {name: getattr(row, prefix + name) for name in fields}
    return SimpleNamespace(**values) if getattr(row, prefix + fields[0]) is not None else None


@lru_cache(maxsize=4)
def _page_statement(own: bool, after: bool):
    """`order_page`'s SELECT: orders, their items' JSON array, both addresses and the latest payment. Built once."""
    ship, bill, latest = aliased(ShippingAddress), aliased(BillingAddress), _latest_payment_lateral()
    items = (select(func.coalesce(func.json_agg(func.json_build_array(
                 cast(OrderItem.variant_id, Text), cast(OrderItem.product_id, Text), OrderItem.sku,
                 OrderItem.product_name, cast(OrderItem.unit_price, Text), OrderItem.quantity,
                 cast(OrderItem.line_total, Text))), literal_column("'[]'::json")))
             .where(OrderItem.order_id == Order.id).scalar_subquery())
    query = (select(Order.id, Order.user_id, Order.status, Order.currency, Order.subtotal, Order.shipping_total,
                    Order.tax_total, Order.total, Order.created_at, items.label("items"),
                    *(getattr(ship, name).label("s_" + name) for name in ADDRESS_FIELDS),
                    *(getattr(bill, name).label("b_" + name) for name in ADDRESS_FIELDS),
                    *(latest.c[name].label("p_" + name) for name in PAYMENT_FIELDS))
             .outerjoin(ship, ship.order_id == Order.id).outerjoin(bill, bill.order_id == Order.id)
             .outerjoin(latest, true())
             .order_by(Order.created_at.desc(), Order.id.desc()).limit(bindparam("limit")))
    if own:
        query = query.where(Order.user_id == bindparam("owner", type_=Order.user_id.type))
    if after:
        query = query.where(func.row(Order.created_at, Order.id) < func.row(
            bindparam("after_at", type_=Order.created_at.type), bindparam("after_id", type_=Order.id.type)))
    return prepared(query)


def latest_payment(session: Session, order: Order) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.order_id == order.id)
                          .order_by(Payment.created_at.desc()).limit(1))


def _latest_payment_lateral():
    """The order's latest payment (as `latest_payment` picks it), as a LATERAL subquery of a SELECT of orders."""
    return select(*(getattr(Payment, name) for name in PAYMENT_FIELDS)).where(Payment.order_id == Order.id) \
        .order_by(Payment.created_at.desc()).limit(1).lateral("latest")


PAYMENT_FIELDS = ("id", "provider", "status", "method", "reference", "amount", "currency")


def request_payment(session: Session, actor: Actor, order_id: uuid.UUID, method: str) -> SimpleNamespace:
    """Start (or, while one is in flight, return) the order's payment; the outcome arrives later.

    Two statements and the commit: the order locked with its latest payment read in the same trip, then
    the payment's change, its `payment.requested` event and the outbox row in one INSERT … WITH.
    """
    own = _own_only(actor)
    row = session.connection().execute(_payment_lock(own), {"lock_order": order_id, "lock_user": actor.user_id}) \
        .one_or_none()
    if row is None:
        raise NotFound("no such order")
    if row.order_status != PENDING:
        raise Conflict(f"an order that is {row.order_status} cannot be paid", {"status": [row.order_status]})
    payment = SimpleNamespace(**{name: getattr(row, name) for name in PAYMENT_FIELDS})
    if payment.status == "processing":
        return payment
    retry = payment.status == "failed"  # the last attempt was refused: a new attempt gets new idempotency keys
    if retry:
        payment = SimpleNamespace(id=uuid.uuid4(), provider=payment.provider, reference=None, amount=row.total,
                                  currency=row.order_currency)
    payment.status, payment.method = "processing", method
    event = {"kind": "payment.requested", "actor": actor_label(actor), "reason": "",
             "data": {"paymentId": str(payment.id), "method": method}}
    written = session.connection().execute(_payment_statement(retry), {
        **{f"payment_{name}": getattr(payment, name) for name in PAYMENT_FIELDS}, "payment_order": order_id,
        "event_kind": event["kind"], "event_actor": event["actor"], "event_data": event["data"],
        **{f"outbox_{name}": value
           for name, value in outbox.enqueue_values(session, START_PAYMENT_TASK, payment_id=payment.id).items()},
    }).one()
    announce_order_event(session, row.user_id, order_id, {**event, "id": written.id, "created_at": written.created_at})
    return payment


@lru_cache(maxsize=2)
def _payment_lock(own: bool):
    """The order locked, with its latest payment (LATERAL); only the caller's own when `own`. Built once."""
    latest = _latest_payment_lateral()
    query = select(Order.status.label("order_status"), Order.total, Order.currency.label("order_currency"),
                   Order.user_id, *latest.c).outerjoin(latest, true()) \
        .where(Order.id == bindparam("lock_order", type_=Order.id.type))
    if own:
        query = query.where(Order.user_id == bindparam("lock_user", type_=Order.user_id.type))
    return prepared(query.with_for_update(of=Order))


@lru_cache(maxsize=2)
def _payment_statement(new_payment: bool):
    """The payment marked processing (or a new attempt inserted), its event and outbox row: one statement."""
    payments, order_id = Payment.__table__, bindparam("payment_order", type_=Payment.order_id.type)
    if new_payment:
        payment = insert(payments).values(order_id=order_id,
                                          **{name: bindparam(f"payment_{name}") for name in PAYMENT_FIELDS})
    else:
        payment = update(payments).where(payments.c.id == bindparam("payment_id")) \
            .values(status=bindparam("payment_status"), method=bindparam("payment_method"), updated_at=func.now())
    payment = payment.returning(payments.c.id).cte("requested_payment")
    messages = OutboxMessage.__table__
    message = insert(messages).values(**{name: bindparam(f"outbox_{name}") for name in OUTBOX_FIELDS}) \
        .returning(messages.c.id).cte("requested_outbox")
    event = _event_insert(order_id).cte("requested_event")
    return prepared(select(event.c.id, event.c.created_at).add_cte(payment, message))


OUTBOX_FIELDS = ("id", "task", "kwargs", "request_id")


def _event_insert(order_id, to_status=None):
    """INSERT of one event of the order `order_id` (a bound parameter) from the bound `event_kind`, `event_actor`
    and `event_data`; returns its id and created_at."""
    events = OrderEvent.__table__
    return insert(events).values(order_id=order_id, kind=bindparam("event_kind"), actor=bindparam("event_actor"),
                                 to_status=to_status, reason="", data=bindparam("event_data")) \
        .returning(events.c.id, events.c.created_at)


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
    found = session.execute(_payment_rows(), {"locked_payment": payment_id}).unique().first()
    if found is None:
        return None
    order, payment, user = found
    # the rows are kept referenced, so the identity map keeps them for this transaction
    held[payment_id] = (session.get_transaction(), order, payment, user)
    return payment


@lru_cache(maxsize=1)
def _payment_rows():
    """The order, payment, customer and items of a bound payment id, the order and payment locked. Built once:
    building it per call (joins, options, lock clause) cost a fifth of the statement's CPU."""
    # FOR UPDATE OF orders, payments: PostgreSQL locks each result row's order, then its payment
    return prepared(select(Order, Payment, User).join(Payment, Payment.order_id == Order.id)
                    .outerjoin(User, User.id == Order.user_id)
                    .where(Payment.id == bindparam("locked_payment", type_=Payment.id.type))
                    .options(joinedload(Order.items)).with_for_update(of=(Order, Payment))
                    .execution_options(populate_existing=True))


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
