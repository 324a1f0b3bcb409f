"""Queueing email, and the per-template hooks that run when it is sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import outbox, task_names
from models.emails.tables import FAILED, QUEUED, SENDING, SENT, SKIPPED, EmailMessage

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


def lock_for_sending(session: Session, message_id: str) -> EmailMessage | None:
    """The message still to send, locked; None when it is gone or already handled.

    One `sending` had an attempt cut off (see `attempted_at`). A failed one is
    tried again: only a replayed dead letter delivers it once more.
    """
    message = session.get(EmailMessage, uuid.UUID(message_id), with_for_update=True)
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
    session.flush()
    # one statement: the mark comes back from the UPDATE instead of a SELECT before it
    attempt = session.execute(update(EmailMessage).where(EmailMessage.id == message.id)
                              .values(status=SENDING,
                                      attempted_at=func.clock_timestamp().cast(EmailMessage.attempted_at.type))
                              .returning(EmailMessage.attempted_at)
                              .execution_options(synchronize_session=False)).scalar_one()
    set_committed_value(message, "status", SENDING)
    set_committed_value(message, "attempted_at", attempt)
    return attempt


def _locked_attempt(session: Session, message_id: str, attempt: datetime) -> EmailMessage | None:
    """The message, locked, if it is still in the attempt marked `attempt` (no other delivery settled it)."""
    message = session.get(EmailMessage, uuid.UUID(message_id), with_for_update=True)
    if message is None or message.status != SENDING or message.attempted_at != attempt:
        return None
    return message


def finish_attempt(session: Session, message_id: str, attempt: datetime, provider_message_id: str | None) -> None:
    """The provider accepted the email of attempt `attempt`: mark it sent.

    One conditional UPDATE: it changes the row only if it is still in that attempt (no other delivery settled
    it), which locking the row and checking first did in two round trips.
    """
    session.execute(update(EmailMessage)
                    .where(EmailMessage.id == uuid.UUID(message_id), EmailMessage.status == SENDING,
                           EmailMessage.attempted_at == attempt)
                    .values(status=SENT, provider_message_id=provider_message_id, sent_at=func.now())
                    .execution_options(synchronize_session=False))


def clear_attempt(session: Session, message_id: str, attempt: datetime) -> None:
    """The provider answered that it did not accept attempt `attempt`: the message was never sent."""
    message = _locked_attempt(session, message_id, attempt)
    if message is not None:
        message.status = QUEUED
        message.attempted_at = None


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
