"""Queueing email, and the per-template hooks that run when it is sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import ARRAY, bindparam, cast, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import outbox, task_names
from models.prepared import prepared
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


# session.info key: the list that collects the emails this transaction's caller sends itself (`send_after_commit`)
HELD = "emails_held"


def send_after_commit(session: Session) -> list[Held]:
    """From now on, emails queued in this transaction are sent by the caller once it commits; the list that
    will hold them (filled at commit, when their attempt marks are known)."""
    return session.info.setdefault(HELD, [])


@dataclass(frozen=True, slots=True)
class Held:
    """An email whose first attempt was committed with the data that queued it (plain values: the session is
    gone when it is sent): the caller renders and sends it, then `finish_held` (several callers' together:
    `marks.SentMarks`). Its outbox row, not handed to the publisher, stays the guarantee: if the caller never
    finishes, the sweep publishes it and `send_email` settles the attempt as any cut-off one (asks the
    provider once EMAIL_ACCEPTANCE_LAG passed)."""

    id: uuid.UUID
    to: str
    template: str
    context: dict
    attempt: datetime
    outbox_id: uuid.UUID


def queue_email(session: Session, to: str, template: str, **context) -> None:
    """Add an email to send after this transaction commits.

    Normally its `send_email` task is published after the commit. In a transaction whose caller asked to
    `send_after_commit`, an email whose template has no prepare hook is written with its first attempt
    already begun (`sending`, `attempted_at`), which commits with the data, and its outbox row is held
    back from the publisher: the caller sends it right after the commit, with no task, no publish and no
    attempt transaction of its own. Both rows go in one statement, which returns the attempt's mark.
    """
    held = session.info.get(HELD)
    if held is None or template in _PREPARE:
        message = EmailMessage(id=uuid.uuid4(), to_address=to, template=template, context=context, status=QUEUED)
        session.add(message)
        outbox.enqueue(session, SEND_TASK, message_id=message.id)
        return
    message_id = uuid.uuid4()
    row = outbox.enqueue_values(session, SEND_TASK, held=True, message_id=message_id)
    attempt = session.connection().execute(_held_statement(), {
        "held_id": message_id, "held_to": to, "held_template": template, "held_context": context,
        **{f"held_outbox_{name}": value for name, value in row.items()}}).scalar_one()
    held.append(Held(message_id, to, template, context, attempt, row["id"]))


@lru_cache(maxsize=1)
def _held_statement():
    """A held email and its outbox row in one INSERT … WITH, returning the attempt's mark. Built once.

    Parameter names never match a column's (SQLAlchemy would add such a key to the statement's columns)."""
    messages = EmailMessage.__table__
    message = insert(messages).values(
        id=bindparam("held_id", type_=messages.c.id.type), to_address=bindparam("held_to"),
        template=bindparam("held_template"), context=bindparam("held_context", type_=messages.c.context.type),
        status=SENDING, attempted_at=func.clock_timestamp().cast(messages.c.attempted_at.type),
    ).returning(messages.c.attempted_at).cte("held_message")
    rows = outbox.OutboxMessage.__table__
    row = insert(rows).values(**{name: bindparam(f"held_outbox_{name}", type_=rows.c[name].type)
                                 for name in ("id", "task", "kwargs", "request_id")}
                              ).returning(rows.c.id).cte("held_outbox")
    return prepared(select(message.c.attempted_at).add_cte(row))


def finish_held(session: Session, sent: dict[uuid.UUID, tuple[datetime, str | None]],
                outbox_ids: list[uuid.UUID]) -> None:
    """Held emails the provider accepted: marked sent, and their outbox rows marked published (nothing is
    left for their `send_email` tasks to do, so they are never published), in one statement.

    The statement also sets `synchronous_commit` off for its transaction (`SET LOCAL`, without a round trip
    of its own): its commit does not wait for its WAL flush. Lost in a database crash, the mark leaves the
    message `sending` with its outbox row unpublished, and the sweep's `send_email` asks the provider, finds
    it accepted and marks it sent (nothing sent twice), as for the outbox's own published marks. The caller
    commits nothing else in that transaction.
    """
    finish_attempts(session, sent, outbox_ids)


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


def finish_attempts(session: Session, sent: dict[uuid.UUID, tuple[datetime, str | None]],
                    outbox_ids: list[uuid.UUID] | None = None) -> None:
    """`finish_attempt` for several messages in one statement: id -> (attempt mark, provider's id); with
    `outbox_ids`, held outbox rows marked done in the same statement, whose transaction then commits without
    waiting for its WAL flush (`finish_held`)."""
    if not sent:
        return
    ids, marks = list(sent), [attempt for attempt, _ in sent.values()]
    session.connection().execute(_finish_statement(outbox_ids is not None), {
        "finish_ids": ids, "finish_marks": marks, "finish_providers": [provider for _, provider in sent.values()],
        "done_ids": outbox_ids or []})


@lru_cache(maxsize=2)
def _finish_statement(with_outbox: bool):
    """UPDATE … FROM unnest(ids, marks, provider ids): the messages still in those attempts marked sent; one
    statement whatever the count, built and compiled once (a VALUES list is compiled anew every time)."""
    table = EmailMessage.__table__
    arrays = [cast(bindparam(name, type_=ARRAY(table.c[column].type)), ARRAY(table.c[column].type))
              for name, column in (("finish_ids", "id"), ("finish_marks", "attempted_at"),
                                   ("finish_providers", "provider_message_id"))]
    sent = func.unnest(*arrays).table_valued("id", "attempt", "provider_id").render_derived(name="sent")
    statement = update(table).where(table.c.id == sent.c.id, table.c.status == SENDING,
                                    table.c.attempted_at == sent.c.attempt) \
        .values(status=SENT, provider_message_id=sent.c.provider_id, sent_at=func.now())
    if with_outbox:
        # set_config(…, true) is SET LOCAL; an uncorrelated condition, evaluated once before any row
        no_flush_wait = select(func.set_config("synchronous_commit", "off", True)).scalar_subquery()
        statement = statement.where(no_flush_wait == "off").add_cte(outbox.mark_done("done_ids"))
    return prepared(statement)


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
