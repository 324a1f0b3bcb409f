"""The order's event history: one appended row per transition and payment event."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import ARRAY, bindparam, cast, func, insert, inspect, select, update
from sqlalchemy.orm import Session

from models.orders import webhooks
from models.orders.tables import Order, OrderEvent, OrderStatus, Payment
from models.prepared import prepared
from models.realtime import announce_order_event
from models.users.permissions import Actor

EVENT_FIELDS = ("kind", "actor", "from_status", "to_status", "reason", "data")
ORDER_WRITTEN = frozenset({"status", "stock_state"})
PAYMENT_WRITTEN = frozenset({"status", "reference"})


def actor_label(actor: Actor | str) -> str:
    """How the history names who acted: `system`, `user:<id>`, `api_key:<id>`."""
    if isinstance(actor, str):
        return actor
    if actor.system:
        return "system"
    if actor.api_key_id is not None:
        return f"api_key:{actor.api_key_id}"
    return f"user:{actor.user_id}"


def record(session: Session, order: Order, kind: str, actor: Actor | str, *, from_status: OrderStatus | None = None,
           to_status: OrderStatus | None = None, reason: str = "", data: dict | None = None) -> OrderEvent:
    """Append an event to the order's history, in the caller's transaction."""
    event = OrderEvent(order_id=order.id, kind=kind, actor=actor_label(actor), from_status=from_status,
                       to_status=to_status, reason=reason, data=data or {})
    session.add(event)
    return event


def write_now(session: Session, order: Order) -> bool:
    """Write a move's changes at once in one statement instead of the unit of work's three at commit: the
    order's status and stock state, its payments' status and reference, and its new history rows; and the
    provider's event that caused it, when its caller left it for this statement (`webhooks.store_with_move`).

    Only when nothing else of theirs is pending (False otherwise: the flush at commit writes them as before).
    The history rows leave the session and go to the real-time broadcaster as written.
    """
    payments = [obj for obj in session.dirty if isinstance(obj, Payment) and obj.order_id == order.id]
    events = sorted((obj for obj in session.new if isinstance(obj, OrderEvent) and obj.order_id == order.id),
                    key=lambda obj: inspect(obj).insert_order)
    if not (inspect(order).persistent and _changed_only(order, ORDER_WRITTEN)
            and all(_changed_only(p, PAYMENT_WRITTEN) for p in payments)):
        return False
    stored = webhooks.take_with_move(session)
    rows = session.connection().execute(_write_statement(stored is not None), {
        **(stored or {}), "moved_order": order.id, "moved_status": order.status, "moved_stock": order.stock_state,
        "paid_ids": [p.id for p in payments], "paid_statuses": [p.status for p in payments],
        "paid_references": [p.reference for p in payments],
        **{f"events_{name}": [getattr(event, name) for event in events] for name in EVENT_FIELDS}}).all()
    for obj in (order, *payments):
        # What a flush does once it has written an object: its values are the committed ones and it is no
        # longer modified, so the commit's flush finds nothing to do (set_committed_value alone left both in
        # session.dirty, and the unit of work compared every attribute of each to find no change).
        state = inspect(obj)
        state._commit_all(state.dict, session.identity_map)
        session.expire(obj, ["updated_at"])
    for event, (event_id, created_at) in zip(events, sorted(rows), strict=True):
        session.expunge(event)
        announce_order_event(session, order.user_id, order.id, {
            **{name: getattr(event, name) for name in EVENT_FIELDS}, "id": event_id, "created_at": created_at})
    return True


def _changed_only(obj, names: frozenset) -> bool:
    """Whether nothing but `names` of `obj` changed since it was loaded or flushed."""
    return set(inspect(obj).committed_state) <= names


@lru_cache(maxsize=2)
def _write_statement(with_event: bool):
    """`write_now`'s statement: the order and its payments updated, the history rows inserted from one array
    per column (in their order), their ids and times returned; `with_event`, the provider's event inserted
    too. Built once each."""
    orders, payments, events = Order.__table__, Payment.__table__, OrderEvent.__table__
    order_id = bindparam("moved_order", type_=orders.c.id.type)
    moved = update(orders).where(orders.c.id == order_id) \
        .values(status=bindparam("moved_status", type_=orders.c.status.type), stock_state=bindparam("moved_stock"),
                updated_at=func.now()).returning(orders.c.id).cte("moved")

    def column(name: str, table, parameter: str):
        kind = ARRAY(table.c[name].type)
        return func.unnest(cast(bindparam(parameter, type_=kind), kind))

    given = select(column("id", payments, "paid_ids").label("id"),
                   column("status", payments, "paid_statuses").label("status"),
                   column("reference", payments, "paid_references").label("reference")).subquery("given")
    paid = update(payments).where(payments.c.id == given.c.id) \
        .values(status=given.c.status, reference=given.c.reference, updated_at=func.now()) \
        .returning(payments.c.id).cte("paid")
    written = insert(events).from_select(["order_id", *EVENT_FIELDS], select(
        order_id, *(column(name, events, f"events_{name}") for name in EVENT_FIELDS))) \
        .returning(events.c.id, events.c.created_at).cte("written")
    ctes = (moved, paid, webhooks.store_statement(queue=False).cte("stored")) if with_event else (moved, paid)
    return prepared(select(written.c.id, written.c.created_at).add_cte(*ctes))


def replay(events: list[OrderEvent], legal) -> tuple[OrderStatus | None, str]:
    """The status the events lead to, and the first problem found ('' when none)."""
    status = None
    for event in events:
        if event.to_status is None:
            continue
        if event.kind == "created":
            if status is not None:
                return status, f"event {event.id}: created twice"
        elif event.from_status != status or not legal(status, event.to_status):
            return status, f"event {event.id}: {event.from_status}->{event.to_status} does not follow {status}"
        status = event.to_status
    return status, ""


def disagreements(session: Session, legal) -> list[tuple[Order, str]]:
    """Orders whose stored status is not what their events replay to."""
    found = []
    for order in session.scalars(select(Order).order_by(Order.created_at)):
        status, problem = replay(list(order.events), legal)
        if problem:
            found.append((order, problem))
        elif status != order.status:
            found.append((order, f"stored {order.status}, events say {status}"))
    return found
