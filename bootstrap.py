"""The composition root: `bootstrap(settings)` builds what a process uses, for web, worker, beat and CLI alike.

Nothing else reads the environment or wires a hook: the entry points (wsgi.py,
`celery -A tasks` through tasks/celery.py, `python -m web.realtime`, the CLI
through wsgi) call `bootstrap` once, and everything below gets its resources
from the `Shop` it returns. Resources are made on first use, so a worker's
pool processes open their own connections after the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta
from functools import cached_property, partial

import redis
from celery import Celery, signals

import celeryconfig
from integrations.breaker import Guarded, make_breaker
from models import crypto, cursors, task_names
from models.db import Database
from models.operations.queues import SENT_AT_HEADER
from models.orders import effects
from models.outbox import Relay, relay_options
from models.realtime import Broadcaster
from models.users.actions import verification_prepare
from settings import Settings

log = logging.getLogger(__name__)


class Shop:
    """Every resource of one process, built from one `Settings`, each made once on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings

    # --- database, outbox, Redis, Celery ------------------------------------------------------------------

    @cached_property
    def db(self) -> Database:
        """The database, with the outbox relay and the real-time broadcaster attached to its sessions."""
        s = self.settings
        db = Database(s.DATABASE_URL, s.DATABASE_POOL_SIZE, s.SERVICE_TIMEOUT)
        self.__dict__["relay"] = Relay(db, publisher(self.celery, s.OUTBOX_CONFIRM_TIMEOUT), **relay_options(s))
        Broadcaster(db, self.redis)  # order events and import progress, after commit
        return db

    @cached_property
    def relay(self) -> Relay:
        """Publishes outbox rows after commit; the sweeper's handle too."""
        self.db  # noqa: B018  (making the database attaches the relay)
        return self.__dict__["relay"]

    @cached_property
    def redis(self) -> redis.Redis:
        s = self.settings
        return redis.Redis.from_url(s.REDIS_URL, socket_timeout=s.SERVICE_TIMEOUT,
                                    socket_connect_timeout=s.SERVICE_TIMEOUT)

    @cached_property
    def celery(self) -> Celery:
        """The Celery app: the worker's and beat's, and the publisher of web and CLI."""
        app = Celery("shop", set_as_current=False)
        app.conf.update(celeryconfig.config(self.settings))
        app.shop = self  # how a task finds its resources (tasks.runtime)
        return app

    # --- vendors ------------------------------------------------------------------------------------------

    @cached_property
    def sent_marks(self):
        """Held emails' sent marks, committed together (models.emails.marks)."""
        from models.emails.marks import SentMarks

        return SentMarks(self.db)

    @cached_property
    def email(self):
        """The email provider (EMAIL_PROVIDER)."""
        from integrations.email import make_provider

        s = self.settings
        return make_provider(s.EMAIL_PROVIDER, outbox_dir=s.path(s.EMAIL_OUTBOX_DIR), api_key=s.SENDGRID_API_KEY,
                             host=s.SENDGRID_HOST, timeout=s.SENDGRID_TIMEOUT, sandbox_latency=s.SANDBOX_EMAIL_LATENCY)

    @cached_property
    def payment_gateway(self):
        """The bare payment gateway: web verifies webhook signatures with it (no vendor call)."""
        from integrations.payments import make_gateway

        s = self.settings
        return make_gateway(s.PAYMENTS_PROVIDER, redis_url=s.REDIS_URL, sandbox_secret=s.SANDBOX_WEBHOOK_SECRET,
                            sandbox_latency=s.SANDBOX_PAYMENT_LATENCY, api_key=s.STRIPE_API_KEY,
                            webhook_secret=s.STRIPE_WEBHOOK_SECRET, api_base=s.STRIPE_API_BASE,
                            timeout=s.STRIPE_TIMEOUT)

    @cached_property
    def payments(self):
        """The payment gateway (PAYMENTS_PROVIDER) behind its circuit breaker."""
        return Guarded(self.payment_gateway, self.breaker(self.settings.PAYMENTS_PROVIDER))

    @cached_property
    def shipping_provider(self):
        """The bare shipping provider (SHIPPING_PROVIDER)."""
        from integrations.shipping import make_provider

        s = self.settings
        return make_provider(s.SHIPPING_PROVIDER, wsdl_dir=s.path(s.UPS_WSDL_DIR), endpoint=s.UPS_ENDPOINT,
                             username=s.UPS_USERNAME, password=s.UPS_PASSWORD, access_key=s.UPS_ACCESS_KEY,
                             account=s.UPS_ACCOUNT_NUMBER, timeout=s.UPS_TIMEOUT,
                             delivery_after=s.SANDBOX_DELIVERY_AFTER)

    @cached_property
    def shipping(self):
        """The shipping provider behind its circuit breaker."""
        return Guarded(self.shipping_provider, self.breaker(self.settings.SHIPPING_PROVIDER))

    def breaker(self, name: str):
        """What makes the Redis-backed breakers guarding vendor `name` (one per thread, one client for all)."""
        s = self.settings
        client = redis.Redis.from_url(s.REDIS_URL)  # bytes replies, as pybreaker reads them
        return partial(make_breaker, name, client, s.BREAKER_FAIL_MAX, s.BREAKER_RESET_TIMEOUT)

    @cached_property
    def search(self):
        """The search backend (SEARCH_BACKEND)."""
        from integrations.search import make_search

        return make_search(self.settings, self.db.engine)

    @cached_property
    def catalog_cache(self):
        """Cached public catalog pages and their outage snapshot, in Redis."""
        from models.catalog.cache import CatalogCache

        s = self.settings
        return CatalogCache(self.redis, s.CATALOG_CACHE_TTL, s.CATALOG_SNAPSHOT_TTL)

    @cached_property
    def storage(self):
        """The object store (STORAGE_BACKEND)."""
        from integrations.storage import make_storage

        return make_storage(self.settings)

    # --- life cycle ---------------------------------------------------------------------------------------

    def after_fork(self) -> None:
        """Forget connections a parent process opened (a worker's pool child calls this)."""
        if "db" in self.__dict__:
            self.db.engine.dispose(close=False)

    def close(self) -> None:
        """Commit the held emails' marks still gathered, and close the pools this process opened."""
        if "sent_marks" in self.__dict__:
            self.sent_marks.close()
        if "db" in self.__dict__:
            self.db.dispose()


def bootstrap(settings: Settings | None = None) -> Shop:
    """Wire the domain to `settings` and return the process's resources (default settings: the environment)."""
    settings = settings or Settings.from_env()
    settings.check_production()
    crypto.configure(crypto.KeyRing.parse(settings.PII_KEYS, settings.PII_ACTIVE_KEY))
    cursors.configure(settings.SECRET_KEY)
    effects.configure(fulfillment_email=settings.FULFILLMENT_EMAIL, tracking_url=settings.TRACKING_URL)
    verification_prepare(timedelta(seconds=settings.EMAIL_VERIFICATION_TTL),
                         settings.FRONTEND_URL.rstrip("/") + "/verify-email#token={token}")
    _connect_publish_hooks()
    shop = Shop(settings)
    shop.celery.set_current()  # a task called in this process (a test's, the CLI's) finds this Shop
    return shop


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
        app.send_task(task_names.SWEEP_OUTBOX, producer=app.amqp.Producer(memory), retry=False,
                      headers={"request_id": None})
        with app.connection_for_write() as connection:
            connection.transport  # noqa: B018  (imports the broker's transport; does not connect)


def _connect_publish_hooks() -> None:
    """Hooks on every message this process publishes, whoever sends it (web, worker, beat)."""
    signals.before_task_publish.connect(_stamp, weak=False, dispatch_uid="shop.stamp")
    signals.before_task_publish.connect(_expire_in_the_worker, weak=False, dispatch_uid="shop.expire")


def _stamp(headers=None, **_):
    """Publish time, for the age of the oldest waiting message (models.operations.queues)."""
    if headers is not None:
        headers[SENT_AT_HEADER] = time.time()


def _expire_in_the_worker(properties=None, **_):
    """Leave a task's `expires` to the worker, which skips it; without the AMQP expiration Celery adds,
    RabbitMQ would move every expired beat job to `<queue>.dead`, where only failures belong."""
    if properties is not None:
        properties.pop("expiration", None)
