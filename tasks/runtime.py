"""A task's resources: the `Shop` that bootstrap built for the app running it."""

from __future__ import annotations

from celery._state import get_current_app, get_current_task


def shop():
    """The resources of the app running the current task (else of this process's current app)."""
    task = get_current_task()
    app = task.app if task is not None else get_current_app()
    try:
        return app.shop
    except AttributeError:
        raise RuntimeError("no bootstrapped Celery app: call bootstrap(settings) before running tasks") from None


def settings():
    return shop().settings


def database():
    return shop().db


def relay():
    return shop().relay


def email_provider():
    return shop().email


def redis_client():
    """This process's Redis connection pool."""
    return shop().redis
