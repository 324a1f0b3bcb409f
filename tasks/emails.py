"""The emails queue: render a queued message and send it, exactly once."""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from integrations.email import OutgoingEmail
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


@shared_task(base=EmailTask, name=names.SEND_EMAIL)
def send_email(message_id: str) -> str:
    """Send the queued EmailMessage `message_id` unless it was already handled.

    The row stays locked while the provider is called, so a duplicated
    delivery waits and then finds the message sent.
    """
    with runtime.database().session() as session:
        message = emails.lock_for_sending(session, message_id)
        if message is None:
            return "already handled"
        context = emails.prepare_context(session, message)
        if context is None:
            emails.mark_skipped(message, "no longer needed")
            return "skipped"
        subject, text, html = render(message.template, context)
        provider_id = runtime.email_provider().send(OutgoingEmail(
            message_id=str(message.id), sender=runtime.settings().EMAIL_FROM, to=message.to_address,
            subject=subject, text=text, html=html))
        emails.mark_sent(message, provider_id)
    log.info("email sent", extra={"message_id": message_id, "template": message.template})
    return "sent"
