"""The real-time gateway as a subprocess, the order fixtures, and a WebSocket client that reads with deadlines."""

from __future__ import annotations

import contextlib
import json
import socket
import sys

import pytest
from websockets.sync.client import connect

from tests.helpers import Process
from tests.orders.conftest import make_variant, order_worker, people, storage_dir  # noqa: F401

# Short enough for tests to see revocations, expiry and timeouts quickly.
GATEWAY_ENV = {"WS_REVOCATION_CHECK_INTERVAL": "0.2", "WS_AUTH_TIMEOUT": "1", "WS_MAX_CONNECTIONS_PER_USER": "2",
               "WS_SEND_QUEUE": "20", "WS_PING_INTERVAL": "5"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """`python -m web.realtime` on a free port; `.url` is its /ws URL."""
    port = free_port()
    process = Process([sys.executable, "-m", "web.realtime"], tmp_path_factory.mktemp("gateway") / "gateway.log",
                      env={**GATEWAY_ENV, "WS_PORT": str(port)}, ready="listening for real-time events").start()
    process.url = f"ws://127.0.0.1:{port}/ws"
    yield process
    process.stop()


class Socket:
    """A connected client: `receive` waits for the next JSON message with a deadline."""

    def __init__(self, url: str, **options):
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(url, open_timeout=5, **options))
        self.seen: list[dict] = []

    def auth(self, headers_or_token, last_event_id: int | None = None) -> dict:
        """Send the token; returns the `ready` message (after any replayed events)."""
        token = headers_or_token
        if isinstance(token, dict):
            token = token["Authorization"].removeprefix("Bearer ")
        message = {"type": "auth", "token": token}
        if last_event_id is not None:
            message["lastEventId"] = last_event_id
        self.ws.send(json.dumps(message))
        return self.until(lambda m: m["type"] == "ready")

    def receive(self, timeout: float = 10.0) -> dict:
        message = json.loads(self.ws.recv(timeout=timeout))
        self.seen.append(message)
        return message

    def until(self, predicate, timeout: float = 15.0) -> dict:
        """Read messages until one satisfies `predicate`; fail after `timeout` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message within {timeout}s; got {self.seen}")
            try:
                message = self.receive(left)
            except TimeoutError:
                continue
            if predicate(message):
                return message

    def closed_with(self, timeout: float = 10.0) -> tuple[int, str]:
        """Read until the server closes; returns its close code and reason."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                self.receive(timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def sockets(gateway):
    """Open sockets to the gateway; all closed after the test."""
    opened = []

    def open_socket(query: str = "", **options) -> Socket:
        opened.append(Socket(gateway.url + query, **options))
        return opened[-1]

    yield open_socket
    for sock in opened:
        sock.close()
