"""Provider events stored once by id, then processed by a payments task."""

from __future__ import annotations

import uuid
from functools import lru_cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import outbox, task_names
from models.orders.tables import Payment, Refund, WebhookEvent

PROCESS_TASK = task_names.PROCESS_PAYMENT_EVENT


def store_event(session: Session, provider: str, event_id: str, event_type: str, payload: dict,
                queue: bool = True) -> bool:
    """Keep a verified event and queue its processing; False when it was seen before (a no-op).

    `queue=False` stores it already marked processed and leaves the processing to the caller, in this same
    transaction: no other transaction sees the row before this one commits (a concurrent insert of the same
    event waits on the key, then finds it), so it needs neither a lock nor a second write to be marked.

    The insert goes through the session's connection, not the ORM: it needs nothing the session holds, so
    it does not flush the session's pending changes early (they are written once, at commit).
    """
    inserted = session.connection().execute(store_statement(queue),
                                            _stored(provider, event_id, event_type, payload)).scalar()
    if inserted is None:
        return False
    if queue:
        outbox.enqueue(session, PROCESS_TASK, provider=provider, event_id=event_id)
    return True


# session.info key: an event to store with the statement that writes the move it causes (`store_with_move`)
WITH_MOVE = "webhook_event_with_move"


def store_with_move(session: Session, provider: str, event_id: str, event_type: str, payload: dict) -> None:
    """Store a verified event, already processed, in the statement that writes the move it causes
    (`history.write_now`), or by `store_left` when no such statement ran: one round trip fewer per payment.

    Only for an event its caller made from the intent of the payment it holds locked (the sandbox's, in
    `start_payment`): no earlier delivery of it can have acted, so it is acted on without asking whether it
    was stored before. A copy stored meanwhile by the webhook endpoint keeps its row (ON CONFLICT DO NOTHING)
    and its own processing, which finds the payment settled.
    """
    session.info[WITH_MOVE] = _stored(provider, event_id, event_type, payload)


def _stored(provider: str, event_id: str, event_type: str, payload: dict) -> dict:
    """`store_statement`'s parameters."""
    return {"stored_provider": provider, "stored_id": event_id, "stored_type": event_type, "stored_payload": payload}


def take_with_move(session: Session) -> dict | None:
    """The parameters of the event `store_with_move` left for the move's statement (taken: written once)."""
    return session.info.pop(WITH_MOVE, None)


def store_left(session: Session) -> None:
    """The event of `store_with_move`, written on its own when no move's statement took it."""
    if (values := take_with_move(session)) is not None:
        session.connection().execute(store_statement(False), values)


@lru_cache(maxsize=2)
def store_statement(queue: bool):
    """INSERT … ON CONFLICT DO NOTHING RETURNING of one event from bound values, built once per `queue`.

    Parameter names never match a column's (SQLAlchemy would add such a key to the statement's columns)."""
    table = WebhookEvent.__table__
    return insert(table).values(
        provider=bindparam("stored_provider"), event_id=bindparam("stored_id"), type=bindparam("stored_type"),
        payload=bindparam("stored_payload", type_=table.c.payload.type),
        processed_at=None if queue else func.now()).on_conflict_do_nothing().returning(table.c.event_id)


def lock_unprocessed(session: Session, provider: str, event_id: str) -> WebhookEvent | None:
    """The event, locked, unless it was already processed."""
    event = session.get(WebhookEvent, (provider, event_id), with_for_update=True)
    return None if event is None or event.processed_at is not None else event


def mark_processed(event: WebhookEvent) -> None:
    event.processed_at = func.now()


def payment_by_reference(session: Session, provider: str, reference: str, payment_id: str = "",
                         held: Payment | None = None) -> Payment | None:
    """Our payment for a provider's PaymentIntent (by reference, else by the id we put in its metadata).

    `held`: a payment the caller already holds (locked); when it is the one named, no query is needed.
    """
    if held is not None and held.provider == provider and (held.reference == reference
                                                           or str(held.id) == payment_id):
        return held
    payment = session.scalar(select(Payment).where(Payment.provider == provider, Payment.reference == reference))
    if payment is None and payment_id:
        payment = session.get(Payment, uuid.UUID(payment_id))
    return payment


def refunds_by_reference(session: Session, provider: str, references: list[str],
                         refund_ids: list[str]) -> list[Refund]:
    """Our refunds named by the provider's ids or by the ids we put in their metadata."""
    query = select(Refund).where(Refund.provider == provider,
                                 Refund.reference.in_(references) | Refund.id.in_([uuid.UUID(r) for r in refund_ids]))
    return list(session.scalars(query))
