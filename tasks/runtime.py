"""Per-process resources of a worker, made on first use (after the fork)."""

from __future__ import annotations

from functools import lru_cache

import redis

from integrations.email import EmailProvider, make_provider
from models.db import Database
from models.outbox import Relay, relay_options
from models.realtime import Broadcaster
from settings import get_settings


@lru_cache(maxsize=1)
def relay() -> Relay:
    """The database of this process, with its outbox relay attached."""
    from tasks import app, publisher

    settings = get_settings()
    db = Database(settings.DATABASE_URL, settings.DATABASE_POOL_SIZE, settings.SERVICE_TIMEOUT)
    Broadcaster(db, redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.SERVICE_TIMEOUT,
                                         socket_connect_timeout=settings.SERVICE_TIMEOUT))
    return Relay(db, publisher(app, settings.OUTBOX_CONFIRM_TIMEOUT), **relay_options(settings))


def database() -> Database:
    return relay().db


@lru_cache(maxsize=1)
def email_provider() -> EmailProvider:
    settings = get_settings()
    return make_provider(settings.EMAIL_PROVIDER, outbox_dir=settings.path(settings.EMAIL_OUTBOX_DIR),
                         api_key=settings.SENDGRID_API_KEY, host=settings.SENDGRID_HOST,
                         timeout=settings.SENDGRID_TIMEOUT)


@lru_cache(maxsize=1)
def redis_client():
    """This process's Redis connection pool."""
    import redis

    settings = get_settings()
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.SERVICE_TIMEOUT,
                                socket_connect_timeout=settings.SERVICE_TIMEOUT)
