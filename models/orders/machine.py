"""The order state machine: the spec's diagram as one table, and the one function that moves an order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.errors import Conflict
from models.orders import effects
from models.orders.history import record, write_now
from models.orders.tables import Order, OrderStatus
from models.users.permissions import Actor

PENDING, PROCESSING, SHIPPED = OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.SHIPPED
DELIVERED, RETURNED, CANCELLED = OrderStatus.DELIVERED, OrderStatus.RETURNED, OrderStatus.CANCELLED


@dataclass(frozen=True)
class Transition:
    trigger: str
    action: Callable[[Session, Order, dict], None]
    # Written at once in one statement (`history.write_now`) rather than by the unit of work at commit: the
    # paid move, one per order on the worker's busiest path.
    at_once: bool = False


TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], Transition] = {
    (PENDING, PROCESSING): Transition("payment confirmed", effects.payment_confirmed, at_once=True),
    (PENDING, CANCELLED): Transition("payment failed / timeout", effects.payment_failed_or_timeout),
    (PROCESSING, SHIPPED): Transition("items shipped", effects.items_shipped),
    (PROCESSING, CANCELLED): Transition("admin cancellation", effects.admin_cancellation),
    (SHIPPED, DELIVERED): Transition("delivery confirmed", effects.delivery_confirmed),
    (SHIPPED, RETURNED): Transition("return initiated", effects.return_initiated),
    (DELIVERED, RETURNED): Transition("return initiated", effects.return_initiated),
}


def legal(source: OrderStatus | None, target: OrderStatus) -> bool:
    """Whether the diagram has an arrow from `source` to `target`."""
    return (source, target) in TRANSITIONS


def move(session: Session, order: Order, target: OrderStatus, actor: Actor | str, why: str = "",
         **data) -> None:
    """Move `order` (locked by the caller) to `target`, run the move's actions and record it; 409 if illegal."""
    transition = TRANSITIONS.get((order.status, target))
    if transition is None:
        raise Conflict(f"an order that is {order.status} cannot become {target}",
                       {"status": [f"{order.status} -> {target} is not allowed"]})
    transition.action(session, order, {**data, "why": why})
    record(session, order, "transition", actor, from_status=order.status, to_status=target,
           reason=why or transition.trigger, data=data)
    order.status = target
    if transition.at_once:
        write_now(session, order)
