"""Redis unavailable: rate limits and caches fail open; sign-in, the token denylist and API keys fail closed.

The app is pointed at a Redis of its own on a free loopback port, stopped and started again under it.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import replace

import pytest
import redis

from tests.faults.ledger import TALLIES, Tally
from tests.helpers import PASSWORD, bearer, make_user, wait_for
from tests.orders.conftest import place


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server on a loopback port, started and stopped by the test."""

    def __init__(self, port: int, folder):
        self.port, self.folder, self.proc = port, folder, None

    def start(self) -> OwnRedis:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: self._pings(client), message="redis-server to answer")
        return self

    @staticmethod
    def _pings(client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(_free_port(), tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def app_on_own_redis(settings, own_redis, app):
    """Built after the suite's `app` (which make_variant uses): the rate limiter is one object per process and
    takes the storage of the app built last, and here that must be the Redis the test stops."""
    from web import create_app

    app = create_app(replace(settings, REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0", SERVICE_TIMEOUT=1.0,
                             OUTAGE_RETRY_AFTER=7))
    yield app
    app.extensions["shop"].db.dispose()


def test_with_redis_down_reads_and_limits_fail_open_and_auth_fails_closed(app_on_own_redis, own_redis, make_variant):
    app, client = app_on_own_redis, app_on_own_redis.test_client()
    with app.extensions["shop"].db.session() as session:
        user = make_user(session, "customer")
        admin = make_user(session, "admin")
    headers = bearer(app, user)
    created = client.post("/api/v1/api-keys", headers=bearer(app, admin),
                          json={"name": "feed", "scopes": ["users:view_all"]}).json
    api_key = {"X-API-Key": created["key"]}
    assert client.get("/api/v1/users", headers=api_key).status_code == 200  # its entry cached in Redis
    variant = make_variant(stock=5)
    login = {"email": user.email, "password": PASSWORD}
    assert client.get("/api/v1/products").status_code == 200  # warm: pages cached in Redis
    assert client.post("/api/v1/auth/login", json=login).status_code == 200
    own_redis.stop()

    answers = {
        "products": client.get("/api/v1/products"),
        "categories": client.get("/api/v1/categories"),
        "login": client.post("/api/v1/auth/login", json=login),
        "wrong password": client.post("/api/v1/auth/login", json={**login, "password": "wrong-Passw0rd!"}),
        "me": client.get("/api/v1/users/me", headers=headers),
        "api key": client.get("/api/v1/users", headers=api_key),
        "checkout": place(client, headers, variant, 1),
        "logout": client.post("/api/v1/auth/logout", headers=headers),
        "ready": client.get("/readyz"),
    }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    tally = Tally("Redis down (reads open, sign-in closed)", orders=1,
                  server_errors=sum(status >= 500 and status != 503 for status in statuses.values()))
    tally.notes.append("answers while down: " + ", ".join(f"{name} {status}" for name, status in statuses.items()))
    TALLIES.append(tally)
    assert statuses == {"products": 200, "categories": 200, "login": 503, "wrong password": 503, "me": 503,
                        "api key": 503, "checkout": 503, "logout": 503, "ready": 503}
    for name in ("login", "me", "api key", "checkout", "logout"):
        assert answers[name].headers["Retry-After"] == "7" and answers[name].json["code"] == 503
    assert "Retry-After" not in answers["products"].headers

    own_redis.start()  # the same port: the app's pools reconnect, nothing is restarted
    wait_for(lambda: client.get("/api/v1/users/me", headers=headers).status_code == 200,
             message="signed-in requests to work again")
    assert client.post("/api/v1/auth/login", json=login).status_code == 200
    assert client.get("/api/v1/users", headers=api_key).status_code == 200  # Redis came back empty: the row again
    assert place(client, headers, variant, 1).status_code == 201
