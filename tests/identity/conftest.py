"""Fixtures of the identity tests: apps with chosen settings, users, and signing in through the API."""

from __future__ import annotations

import dataclasses
import time

import pyotp
import pytest
from sqlalchemy import text

from tests.helpers import PASSWORD, make_user


@pytest.fixture
def make_app(settings):
    """An app built with some settings changed (the limits, the lockout...)."""
    from web import create_app

    built = []

    def build(**overrides):
        app = create_app(dataclasses.replace(settings, **overrides))
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["shop"].db.dispose()


@pytest.fixture
def db(app):
    return app.extensions["shop"].db


@pytest.fixture
def user_of(db):
    """Create and commit a user with `role`."""
    def create(role="customer", **fields):
        with db.session() as session:
            user = make_user(session, role, **fields)
            session.expunge(user)
        return user
    return create


def login(client, email, password=PASSWORD, **kwargs):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password}, **kwargs)


def auth(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


def enrol_totp(client, headers) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol TOTP for the caller; returns the authenticator and the recovery codes."""
    started = client.post("/api/v1/auth/mfa/totp", headers=headers)
    assert started.status_code == 200, started.json
    totp = pyotp.TOTP(started.json["secret"])
    confirmed = client.post("/api/v1/auth/mfa/totp/confirm", headers=headers, json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.json
    return totp, confirmed.json["recoveryCodes"]


def next_code(totp: pyotp.TOTP, steps: int = 1) -> str:
    """The code of a later 30 s step (still accepted: one step of drift either way)."""
    return totp.at(int(time.time()) + steps * totp.interval)


def rows(db, sql, **params):
    with db.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def events(db, kind=None):
    query = "SELECT kind, actor_user_id, subject_user_id, ip, details FROM security_events"
    if kind:
        return rows(db, query + " WHERE kind = :kind ORDER BY id", kind=kind)
    return rows(db, query + " ORDER BY id")
