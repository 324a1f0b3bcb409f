"""Per-app resources (the `Shop` bootstrap built: database, task publisher, Redis, vendors), and the Api."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Api as _Api

from bootstrap import Shop
from models.db import Database


class Api(_Api):
    """flask-smorest's Api whose errors always have API.md's one shape."""

    def handle_http_exception(self, error):
        payload, code, headers = super().handle_http_exception(error)
        payload.setdefault("message", error.description if code < 500 else "internal server error")
        payload.setdefault("errors", {})
        return payload, code, headers


Runtime = Shop  # the name the views know it by


def runtime() -> Shop:
    return current_app.extensions["shop"]


def db() -> Database:
    return runtime().db
