"""The Celery app: `celery -A tasks worker` and `celery -A tasks beat`.

One module per queue; a task's queue is its module's name (see celeryconfig).
"""

from __future__ import annotations

import os
import threading

from celery import Celery

import celeryconfig
from settings import Settings, get_settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app for `settings`; the web process uses one to publish."""
    app = Celery("shop", set_as_current=False)
    app.conf.update(celeryconfig.config(settings))
    return app


def publisher(app: Celery, confirm_timeout: float | None = None):
    """The outbox's publish function: one message, confirmed by the broker within `confirm_timeout` s, or an error.

    Each thread publishes on a broker connection of its own, opened in the
    process that uses it (so a process forked by gunicorn or Celery's prefork
    pool never shares its parent's); a connection that failed, or whose
    confirm timed out, is dropped and the next publish opens a new one.
    """
    local = threading.local()
    _import_lazy_modules(app)

    def producer():
        if getattr(local, "pid", None) != os.getpid() or getattr(local, "producer", None) is None:
            local.pid, local.connection, local.producer = os.getpid(), None, None
            local.connection = app.connection_for_write()
            local.producer = app.amqp.Producer(local.connection)
        return local.producer

    def drop() -> None:
        connection = getattr(local, "connection", None)
        local.connection = local.producer = None
        if connection is not None:
            connection.collect()  # let go of the socket without waiting on a broker that may not answer

    def publish(task: str, kwargs: dict, task_id: str, request_id: str | None) -> None:
        try:
            app.send_task(task, kwargs=kwargs, task_id=task_id, retry=False, producer=producer(),
                          headers={"request_id": request_id}, confirm_timeout=confirm_timeout)
        except BaseException:
            drop()
            raise
    return publish


def _import_lazy_modules(app: Celery) -> None:
    """Send one message to an in-memory broker, so what Celery and kombu import on the first send is
    imported by this thread: a publisher thread importing it while the main thread was still importing
    (gunicorn --preload) saw half-initialised modules."""
    from kombu import Connection

    with Connection("memory://") as memory:
        app.send_task("tasks.maintenance.sweep_outbox", producer=app.amqp.Producer(memory), retry=False,
                      headers={"request_id": None})
        with app.connection_for_write() as connection:
            connection.transport  # noqa: B018  (imports the broker's transport; does not connect)


app = make_celery(get_settings())
app.set_current()
app.conf.include = ["tasks.emails", "tasks.maintenance", "tasks.search", "tasks.payments", "tasks.shipping",
                    "tasks.imports", "tasks.backups"]

from tasks import signals  # noqa: E402,F401  (wires logging and dead-letter queues)
from tasks import metrics  # noqa: E402,F401  (task metrics on WORKER_METRICS_PORT)
