"""The order's event history: one appended row per transition and payment event."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.orders.tables import Order, OrderEvent, OrderStatus
from models.users.permissions import Actor


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
