"""Per-app resources: the database, the task publisher, Redis, and the Api."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery
from flask import current_app
from flask_smorest import Api as _Api

from models.db import Database
from models.outbox import Relay
from settings import Settings


class Api(_Api):
    """flask-smorest's Api whose errors always have API.md's one shape."""

    def handle_http_exception(self, error):
        payload, code, headers = super().handle_http_exception(error)
        payload.setdefault("message", error.description if code < 500 else "internal server error")
        payload.setdefault("errors", {})
        return payload, code, headers


@dataclass
class Runtime:
    settings: Settings
    db: Database
    relay: Relay
    celery: Celery
    redis: redis.Redis


def runtime() -> Runtime:
    return current_app.extensions["shop"]


def db() -> Database:
    return runtime().db
