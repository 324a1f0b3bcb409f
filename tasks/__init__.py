"""The Celery app: `celery -A tasks worker` and `celery -A tasks beat`.

One module per queue; a task's queue is its module's name (see celeryconfig).
"""

from __future__ import annotations

import os
import threading
import time

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

    `publish.many(messages)` sends several and then waits for all their
    confirms at once (one broker round trip, and one disk flush of a quorum
    queue, for the lot); it raises if any was refused or not confirmed in time.
    Each thread publishes on a broker connection of its own, opened in the
    process that uses it (so a process forked by gunicorn or Celery's prefork
    pool never shares its parent's); a connection that failed, or whose
    confirm timed out, is dropped and the next publish opens a new one.
    """
    local = threading.local()
    _import_lazy_modules(app)
    timeout = confirm_timeout or 30.0

    def on_ack(tag: int, multiple: bool) -> None:
        local.unconfirmed = {t for t in local.unconfirmed if t > tag} if multiple else local.unconfirmed - {tag}

    def on_nack(tag: int, multiple: bool) -> None:
        local.refused = True
        on_ack(tag, multiple)

    def producer():
        if getattr(local, "pid", None) != os.getpid() or getattr(local, "producer", None) is None:
            local.pid, local.connection, local.producer = os.getpid(), None, None
            # Confirms are selected and awaited here, not per message by py-amqp, so a batch waits once.
            local.connection = app.connection_for_write(transport_options={"confirm_publish": False})
            channel = local.connection.default_channel
            channel.confirm_select()
            channel.events["basic_ack"].add(on_ack)
            channel.events["basic_nack"].add(on_nack)
            local.tag, local.unconfirmed, local.refused = 0, set(), False
            local.producer = app.amqp.Producer(channel)
        return local.producer

    def drop() -> None:
        connection = getattr(local, "connection", None)
        local.connection = local.producer = None
        if connection is not None:
            connection.collect()  # let go of the socket without waiting on a broker that may not answer

    def send(task: str, kwargs: dict, task_id: str, request_id: str | None) -> None:
        app.send_task(task, kwargs=kwargs, task_id=task_id, retry=False, producer=producer(),
                      headers={"request_id": request_id})
        local.tag += 1
        local.unconfirmed.add(local.tag)

    def await_confirms() -> None:
        deadline = time.monotonic() + timeout
        while local.unconfirmed and not local.refused:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(local.unconfirmed)} publishes not confirmed within {timeout} s")
            local.connection.drain_events(timeout=remaining)
        if local.refused:
            raise RuntimeError("the broker refused a message (nack)")

    def many(messages: list[tuple[str, dict, str, str | None]]) -> None:
        try:
            for message in messages:
                send(*message)
            await_confirms()
        except BaseException:
            drop()
            raise

    def publish(task: str, kwargs: dict, task_id: str, request_id: str | None) -> None:
        many([(task, kwargs, task_id, request_id)])

    def connect() -> None:
        try:
            producer()
        except BaseException:
            drop()
            raise

    publish.many = many
    publish.connect = connect  # a publisher thread opens its connection when it starts, not on its first row
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
