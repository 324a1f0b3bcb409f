"""The Celery app: `celery -A tasks worker` and `celery -A tasks beat`.

One module per queue; a task's queue is its module's name (see celeryconfig).
"""

from __future__ import annotations

from celery import Celery

import celeryconfig
from settings import Settings, get_settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app for `settings`; the web process uses one to publish."""
    app = Celery("shop", set_as_current=False)
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
                    "tasks.imports", "tasks.backups"]

from tasks import signals  # noqa: E402,F401  (wires logging and dead-letter queues)
from tasks import metrics  # noqa: E402,F401  (task metrics on WORKER_METRICS_PORT)
