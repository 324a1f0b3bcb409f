"""Answers while a backing service is down: 503 with Retry-After, never 500.

What each service's outage means (docs/faults.md has the table):
- PostgreSQL unreachable or its pool exhausted: 503 for any request that needs
  it (catalog reads answer from the Redis snapshot first, see web.catalog.http).
- Redis unreachable: rate limits fail open (counted again once Redis is back);
  anything that must not go unchecked fails closed with 503: sign-in and its
  lockout counters, MFA steps, refresh, logout, and the token denylist that
  every signed-in request consults (a revoked token must never work).
"""

from __future__ import annotations

import logging

import redis
from flask import Flask
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from settings import Settings
from web.errors import error_body

log = logging.getLogger(__name__)

# InterfaceError: psycopg2's "connection already closed", met on a connection the server dropped (the pool
# does not pre-ping; models.db says why).
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


def init_app(app: Flask, settings: Settings) -> None:
    """Map the outage errors of PostgreSQL and Redis to 503 + Retry-After, app-wide."""

    def answer(service: str):
        def handler(exc: Exception):
            log.warning("service unavailable", extra={"service": service, "error": repr(exc)[:300]})
            body = error_body(503, f"{service} is unavailable; try again later")
            return body, 503, {"Retry-After": str(settings.OUTAGE_RETRY_AFTER)}
        return handler

    for error in DATABASE_DOWN:
        app.register_error_handler(error, answer("the database"))
    for error in REDIS_DOWN:
        app.register_error_handler(error, answer("a required service (Redis)"))
