"""The emails queue: render a queued message and send it, exactly once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from celery import shared_task
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from integrations.email import OutgoingEmail
from integrations.errors import IntegrationError
from models.emails import actions as emails
from models import task_names as names
from tasks import runtime
from tasks.base import ShopTask, run_again_in

log = logging.getLogger(__name__)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "emails"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    auto_reload=False,  # templates ship with the code: compile each once, never stat the files again
)



def render(template: str, context: dict) -> tuple[str, str, str]:
    """Subject, text and HTML bodies of `template`."""
    subject = TEMPLATES.get_template(f"{template}.subject.txt").render(context).strip()
    text = TEMPLATES.get_template(f"{template}.txt").render(context)
    html = TEMPLATES.get_template(f"{template}.html").render(context)
    return subject, text, html


class EmailTask(ShopTask):
    """Retries and backoff come from EMAIL_MAX_RETRIES and EMAIL_RETRY_BACKOFF (celeryconfig.task_options)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)
        with runtime.database().session() as session:
            emails.mark_failed(session, kwargs["message_id"], repr(exc))


# How long a delivery that finds its message in a fresh attempt waits once before believing the attempt was
# cut off: a batch holds its messages' locks while it sends, but takes them a moment after committing the
# attempts, and a delivery waiting on the first transaction's lock gets the row in between.
BATCH_GAP = 0.05
# When another delivery (a batch) holds the message: deliver this task again after this many seconds.
BUSY_AGAIN = 1


@shared_task(base=EmailTask, bind=True, name=names.SEND_EMAIL)
def send_email(self: EmailTask, message_id: str) -> str:
    """Send the EmailMessage `message_id` once, whatever kills or repeats its deliveries, and with it up to
    EMAIL_BATCH_SIZE other queued messages.

    The attempt is committed (`sending`, `attempted_at`) before the provider
    is called. A delivery that finds an earlier attempt cut off (a worker
    killed, a timeout) does not send blindly: once `EMAIL_ACCEPTANCE_LAG`
    seconds have passed since that attempt began, it asks the provider
    whether it accepted the message, marks it sent if so and sends it if not.
    Before then it runs again later. docs/faults.md, "Exactly one email".

    A batch: the messages queued and never attempted that no other delivery
    holds are rendered and marked with this one's attempt, in the same
    transaction; then, holding their rows' locks, it sends them one after
    the other and marks them sent together. Their own deliveries, which stay
    the guarantee, find the rows held, run again a second later and find them sent
    (they never wait on the lock: that would hold a worker process for as long as
    the batch's sends). One that fails is
    left to its own delivery (its attempt cleared when the provider refused
    it, else asked about after the lag), and the batch stops there.
    """
    database, provider, settings = runtime.database(), runtime.email_provider(), runtime.settings()
    lag = settings.EMAIL_ACCEPTANCE_LAG
    for waited in (False, True):
        with database.session() as session:
            try:
                message = emails.lock_for_sending(session, message_id, wait=False)
            except emails.Busy:  # a batch is sending it: this process serves other tasks meanwhile
                raise run_again_in(self, BUSY_AGAIN, "another delivery holds the message") from None
            if message is None:
                return "already handled"
            age = emails.attempt_age(session, message)
            fresh = age is not None and age < lag
            if fresh and waited:
                raise run_again_in(self, lag - age,
                                   f"an attempt began {age:.1f} s ago: ask the provider once its feed shows it")
            if not fresh:
                if age is not None:
                    accepted = provider.find_accepted(str(message.id))  # can't tell: TransientError, retried
                    if accepted is not None:
                        emails.mark_sent(message, accepted)
                        log.info("email found sent by an earlier attempt",
                                 extra={"message_id": message_id, "template": message.template})
                        return "sent before"
                own = outgoing(session, message, settings.EMAIL_FROM)
                if own is None:
                    emails.mark_skipped(message, "no longer needed")
                    return "skipped"
                batch = [(message, own), *others(session, message, settings)]
                marks = emails.mark_attempts(session, [m for m, _ in batch])
                break
        time.sleep(BATCH_GAP)  # the row lock released: a batch sending this message takes it meanwhile
    # The attempts are on record: from here a cut-off delivery leaves messages the next ones ask about.
    if len(batch) == 1:
        return send_one(database, provider, message_id, own, marks[message.id], message.template)
    return send_batch(database, provider, [(m.id, email, marks[m.id], m.template) for m, email in batch])


def outgoing(session, message, sender: str) -> OutgoingEmail | None:
    """The email of `message`, rendered (its hook run in this transaction); None when no longer needed."""
    context = emails.prepare_context(session, message)
    if context is None:
        return None
    subject, text, html = render(message.template, context)
    return OutgoingEmail(message_id=str(message.id), sender=sender, to=message.to_address, subject=subject,
                         text=text, html=html)


def others(session, message, settings) -> list[tuple]:
    """Other queued messages to send with `message`, rendered: (message, email) pairs. One that cannot be
    rendered, or is no longer needed, is left to its own delivery."""
    found = []
    for other in emails.claim_others(session, message.id, settings.EMAIL_BATCH_SIZE - 1):
        try:
            email = outgoing(session, other, settings.EMAIL_FROM)
        except TemplateError:
            log.exception("email left out of a batch: it does not render", extra={"message_id": str(other.id)})
            continue
        if email is not None:
            found.append((other, email))
    return found


def send_one(database, provider, message_id: str, email: OutgoingEmail, attempt, template: str) -> str:
    """Send one message whose attempt is committed, with no lock held during the call."""
    try:
        provider_id = provider.send(email)
    except IntegrationError as exc:
        if exc.refused:  # the provider said no: the message was not sent, so the next try needs no question
            with database.session() as session:
                emails.clear_attempt(session, message_id, attempt)
        raise
    with database.session() as session:
        emails.finish_attempt(session, message_id, attempt, provider_id)
    log.info("email sent", extra={"message_id": message_id, "template": template})
    return "sent"


def send_held(shop, held: list[emails.Held]) -> None:
    """Send emails whose first attempt committed with the data that queued them (`emails.send_after_commit`),
    then hand their sent marks (with their outbox rows' done marks) to the process's `SentMarks`, which
    commits those of several tasks together, within a quarter of a second. One that fails is handed to its own
    `send_email` delivery, through its outbox row: at once, its attempt cleared when the provider refused
    it or it never reached the provider; else left `sending`, asked about after EMAIL_ACCEPTANCE_LAG."""
    provider, sender = shop.email, shop.settings.EMAIL_FROM
    sent, failed = {}, []
    for item in held:
        reached = False
        try:
            subject, text, html = render(item.template, item.context)
            reached = True
            sent[item.id] = (item.attempt, provider.send(OutgoingEmail(
                message_id=str(item.id), sender=sender, to=item.to, subject=subject, text=text, html=html)))
            log.info("email sent", extra={"message_id": str(item.id), "template": item.template})
        except Exception as exc:  # noqa: BLE001 - whatever it was, the message's own delivery takes over
            if not reached or (isinstance(exc, IntegrationError) and exc.refused):
                with shop.db.session() as session:
                    emails.clear_attempt(session, str(item.id), item.attempt)
            failed.append(item)
            log.warning("email not sent after commit: its own delivery will", extra={
                "message_id": str(item.id), "error": repr(exc)[:500]})
    if sent:
        shop.sent_marks.add(sent, [item.outbox_id for item in held if item.id in sent])
    if failed:
        shop.relay.release([(item.outbox_id, names.SEND_EMAIL, {"message_id": str(item.id)}, None)
                            for item in failed])


def send_batch(database, provider, batch: list[tuple]) -> str:
    """Send (id, email, attempt, template) in order, the first being this delivery's own message, with the
    rows locked: their deliveries, told the rows are held, run again once the outcome is known. A failure of
    the own message fails the task (after the rest are released unsent); a failure of another ends the batch."""
    sent, unsent, failure = {}, {}, None
    with database.session() as session:
        held = emails.hold_attempts(session, {message_id: attempt for message_id, _, attempt, _ in batch})
        for index, (message_id, email, attempt, template) in enumerate(batch):
            if message_id not in held:
                continue
            if failure is not None:  # never handed over: back to queued for its own delivery
                unsent[message_id] = attempt
                continue
            try:
                sent[message_id] = (attempt, provider.send(email))
                log.info("email sent", extra={"message_id": str(message_id), "template": template})
            except Exception as exc:  # noqa: BLE001 - whatever it was, the rest wait for their own deliveries
                if isinstance(exc, IntegrationError) and exc.refused:
                    unsent[message_id] = attempt
                # otherwise it may have reached the provider: left `sending`, asked about after the lag
                failure = (index, exc)
                if index:
                    log.warning("email batch stopped: its own delivery will try this message", extra={
                        "message_id": str(message_id), "error": repr(exc)[:500]})
        emails.finish_attempts(session, sent)
        emails.clear_attempts(session, unsent)
    if failure is not None and failure[0] == 0:
        raise failure[1]
    return "sent" if len(sent) == 1 else f"sent with {len(sent) - 1} others"
