"""The Celery app: `celery -A tasks worker` and `celery -A tasks beat`.

One module per queue; a task's queue is its module's name (see celeryconfig).
"""

from __future__ import annotations

from celery import Celery
from celery.app.amqp import AMQP

import celeryconfig
from settings import Settings, get_settings


class ExpiryByWorker(AMQP):
    """Messages carry a task's `expires` in their headers only, never as an AMQP message TTL.

    With a TTL, RabbitMQ dead-letters a message that expires in its queue
    (workers down, broker outage), so every missed periodic run became a
    dead letter. Without one, the worker that meets an expired task discards
    and acknowledges it: dead-letter queues hold only what needs a person.
    """

    def _create_task_sender(self):
        send = super()._create_task_sender()

        def send_task_message(producer, name, message, expiration=None, **options):
            return send(producer, name, message, **options)
        return send_task_message


def make_celery(settings: Settings) -> Celery:
    """A Celery app for `settings`; the web process uses one to publish."""
    app = Celery("shop", set_as_current=False, amqp=ExpiryByWorker)
    app.conf.update(celeryconfig.config(settings))
    return app


def publisher(app: Celery):
    """The outbox's publish function: one message, confirmed by the broker, or an error."""
    def publish(task: str, kwargs: dict, task_id: str, request_id: str | None) -> None:
        app.send_task(task, kwargs=kwargs, task_id=task_id, retry=False,
                      headers={"request_id": request_id})
    return publish


app = make_celery(get_settings())
app.set_current()
app.conf.include = ["tasks.emails", "tasks.maintenance", "tasks.search", "tasks.payments", "tasks.shipping",
                    "tasks.imports"]

from tasks import signals  # noqa: E402,F401  (wires logging and dead-letter queues)
