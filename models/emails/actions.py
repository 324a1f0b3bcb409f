"""Queueing email, and the per-template hooks that run when it is sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import column, func, select, update
from sqlalchemy import values as sa_values
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import outbox, task_names
from models.emails.tables import FAILED, QUEUED, SENDING, SENT, SKIPPED, EmailMessage

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's answer to FOR UPDATE NOWAIT on a held row

SEND_TASK = task_names.SEND_EMAIL

# template -> prepare(session, message) -> context dict, or None to skip sending.
# A hook runs in the transaction that records the attempt, so what it writes
# (a token, say) exists before the provider sees the email.
Prepare = Callable[[Session, EmailMessage], "dict | None"]
_PREPARE: dict[str, Prepare] = {}


def prepares(template: str) -> Callable[[Prepare], Prepare]:
    """Register the hook that builds `template`'s context at send time."""
    def register(fn: Prepare) -> Prepare:
        _PREPARE[template] = fn
        return fn
    return register


def queue_email(session: Session, to: str, template: str, **context) -> EmailMessage:
    """Add an email to send after this transaction commits."""
    message = EmailMessage(id=uuid.uuid4(), to_address=to, template=template, context=context, status=QUEUED)
    session.add(message)
    outbox.enqueue(session, SEND_TASK, message_id=message.id)
    return message


class Busy(Exception):
    """Another delivery holds the message's row (a batch sending it): look again once it is done."""


def lock_for_sending(session: Session, message_id: str, wait: bool = True) -> EmailMessage | None:
    """The message still to send, locked; None when it is gone or already handled.

    One `sending` had an attempt cut off (see `attempted_at`). A failed one is
    tried again: only a replayed dead letter delivers it once more. With
    `wait=False` a row another transaction holds raises Busy at once instead
    of holding the caller (a worker process) for as long as that one's sends.
    """
    try:
        message = session.get(EmailMessage, uuid.UUID(message_id), with_for_update={"nowait": not wait})
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE:
            raise Busy(message_id) from exc
        raise
    if message is None or message.status not in (QUEUED, SENDING, FAILED):
        return None
    return message


def attempt_age(session: Session, message: EmailMessage) -> float | None:
    """Seconds since the message's last attempt began, by the database's clock; None if it never had one."""
    if message.attempted_at is None:
        return None
    return float(session.scalar(select(func.extract("epoch", func.clock_timestamp() - message.attempted_at))))


def mark_attempt(session: Session, message: EmailMessage) -> datetime:
    """Record that an attempt begins (commit it before calling the provider); its mark, to finish it with."""
    return mark_attempts(session, [message])[message.id]


def claim_others(session: Session, own_id: uuid.UUID, limit: int) -> list[EmailMessage]:
    """Up to `limit` other messages queued and never attempted, oldest first, locked for a batch.

    SKIP LOCKED: a message whose own delivery (or another batch) holds it is left to that one.
    """
    if limit <= 0:
        return []
    return list(session.scalars(select(EmailMessage)
                                .where(EmailMessage.status == QUEUED, EmailMessage.attempted_at.is_(None),
                                       EmailMessage.id != own_id)
                                .order_by(EmailMessage.created_at).limit(limit)
                                .with_for_update(skip_locked=True)))


def mark_attempts(session: Session, messages: list[EmailMessage]) -> dict[uuid.UUID, datetime]:
    """`mark_attempt` for several messages in one statement (the marks come back from the UPDATE instead of
    a SELECT before it); each one's mark by id."""
    session.flush()
    marks = dict(session.execute(update(EmailMessage).where(EmailMessage.id.in_([m.id for m in messages]))
                                 .values(status=SENDING,
                                         attempted_at=func.clock_timestamp().cast(EmailMessage.attempted_at.type))
                                 .returning(EmailMessage.id, EmailMessage.attempted_at)
                                 .execution_options(synchronize_session=False)).all())
    for message in messages:
        set_committed_value(message, "status", SENDING)
        set_committed_value(message, "attempted_at", marks[message.id])
    return marks


def hold_attempts(session: Session, attempts: dict[uuid.UUID, datetime]) -> set[uuid.UUID]:
    """Lock the messages of a batch whose attempts were committed, while the batch sends them; the ids still
    in those attempts. A delivery of one of them is told the row is held (Busy) and finds it settled later."""
    rows = session.execute(select(EmailMessage.id, EmailMessage.status, EmailMessage.attempted_at)
                           .where(EmailMessage.id.in_(list(attempts))).order_by(EmailMessage.id)
                           .with_for_update()).all()
    return {row.id for row in rows if row.status == SENDING and row.attempted_at == attempts[row.id]}


def finish_attempts(session: Session, sent: dict[uuid.UUID, tuple[datetime, str | None]]) -> None:
    """`finish_attempt` for several messages in one statement: id -> (attempt mark, provider's id)."""
    if not sent:
        return
    values = sa_values(column("id", EmailMessage.id.type), column("attempt", EmailMessage.attempted_at.type),
                       column("provider_id", EmailMessage.provider_message_id.type), name="sent"
                       ).data([(message_id, attempt, provider_id) for message_id, (attempt, provider_id)
                               in sent.items()])
    session.execute(update(EmailMessage)
                    .where(EmailMessage.id == values.c.id, EmailMessage.status == SENDING,
                           EmailMessage.attempted_at == values.c.attempt)
                    .values(status=SENT, provider_message_id=values.c.provider_id, sent_at=func.now())
                    .execution_options(synchronize_session=False))


def clear_attempts(session: Session, attempts: dict[uuid.UUID, datetime]) -> None:
    """Attempts that never reached the provider: the messages go back to queued, for their own deliveries."""
    for message_id, attempt in attempts.items():
        session.execute(update(EmailMessage)
                        .where(EmailMessage.id == message_id, EmailMessage.status == SENDING,
                               EmailMessage.attempted_at == attempt)
                        .values(status=QUEUED, attempted_at=None)
                        .execution_options(synchronize_session=False))


def finish_attempt(session: Session, message_id: str, attempt: datetime, provider_message_id: str | None) -> None:
    """The provider accepted the email of attempt `attempt`: mark it sent.

    One conditional UPDATE: it changes the row only if it is still in that attempt (no other delivery settled
    it), which locking the row and checking first did in two round trips.
    """
    finish_attempts(session, {uuid.UUID(message_id): (attempt, provider_message_id)})


def clear_attempt(session: Session, message_id: str, attempt: datetime) -> None:
    """The provider answered that it did not accept attempt `attempt`: the message was never sent."""
    clear_attempts(session, {uuid.UUID(message_id): attempt})


def prepare_context(session: Session, message: EmailMessage) -> dict | None:
    """The template's context: the stored one, completed by its hook if it has one."""
    hook = _PREPARE.get(message.template)
    extra = hook(session, message) if hook else {}
    return None if extra is None else {**message.context, **extra}


def mark_sent(message: EmailMessage, provider_message_id: str | None) -> None:
    message.status = SENT
    message.provider_message_id = provider_message_id
    message.sent_at = func.now()


def mark_skipped(message: EmailMessage, why: str) -> None:
    message.status = SKIPPED
    message.last_error = why


def mark_failed(session: Session, message_id: str, error: str) -> None:
    """Record that sending failed for good (called outside the sending transaction)."""
    message = session.get(EmailMessage, uuid.UUID(message_id), with_for_update=True)
    if message is not None and message.status in (QUEUED, SENDING):
        message.status = FAILED
        message.last_error = error[:2000]
