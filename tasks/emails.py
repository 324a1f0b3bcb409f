"""The emails queue: render a queued message and send it, exactly once."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from celery import shared_task
from celery.exceptions import Retry
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from integrations.email import OutgoingEmail
from integrations.errors import IntegrationError
from models.emails import actions as emails
from models import task_names as names
from tasks import runtime
from tasks.base import ShopTask

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


def run_again_in(task: ShopTask, seconds: float, why: str) -> Retry:
    """Deliver this task again in `seconds` (whole, at least 1: delayed delivery counts whole seconds) without
    spending one of its retries: waiting is not failing."""
    seconds = max(1, math.ceil(seconds))
    task.signature_from_request(task.request, countdown=seconds, retries=task.request.retries).apply_async()
    return Retry(why, when=seconds)


@shared_task(base=EmailTask, bind=True, name=names.SEND_EMAIL)
def send_email(self: EmailTask, message_id: str) -> str:
    """Send the EmailMessage `message_id` once, whatever kills or repeats its deliveries.

    The attempt is committed (`sending`, `attempted_at`) before the provider
    is called, with no lock held during the call. A delivery that finds an
    earlier attempt cut off (a worker killed, a timeout) does not send
    blindly: once `EMAIL_ACCEPTANCE_LAG` seconds have passed since that
    attempt began, it asks the provider whether it accepted the message,
    marks it sent if so and sends it if not. Before then it runs again later.
    docs/faults.md, "Exactly one email".
    """
    database, provider = runtime.database(), runtime.email_provider()
    lag = runtime.settings().EMAIL_ACCEPTANCE_LAG
    with database.session() as session:
        message = emails.lock_for_sending(session, message_id)
        if message is None:
            return "already handled"
        age = emails.attempt_age(session, message)
        if age is not None:
            if age < lag:
                raise run_again_in(self, lag - age,
                                   f"an attempt began {age:.1f} s ago: ask the provider once its feed shows it")
            accepted = provider.find_accepted(str(message.id))  # can't tell now: TransientError, retried, no resend
            if accepted is not None:
                emails.mark_sent(message, accepted)
                log.info("email found sent by an earlier attempt",
                         extra={"message_id": message_id, "template": message.template})
                return "sent before"
        context = emails.prepare_context(session, message)
        if context is None:
            emails.mark_skipped(message, "no longer needed")
            return "skipped"
        subject, text, html = render(message.template, context)
        template = message.template
        email = OutgoingEmail(message_id=str(message.id), sender=runtime.settings().EMAIL_FROM, to=message.to_address,
                              subject=subject, text=text, html=html)
        attempt = emails.mark_attempt(session, message)
    # The attempt is on record: from here a cut-off delivery leaves a message the next one asks about.
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
