"""What reaches gunicorn itself: malformed chunked bodies, over-long request lines, bad headers, `//` paths."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from tests.helpers import wait_for
from tests.orders.conftest import start_gunicorn


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = start_gunicorn(tmp_path_factory.mktemp("gunicorn"), workers=1)
    # "Booting worker" is logged before the worker has imported the app, which on a loaded machine takes
    # longer than exchange()'s 10 s: the first case timed out. Wait until the app answers.
    wait_for(lambda: _answers(process.url + "/healthz"), timeout=120, message="gunicorn's worker to serve")
    yield process
    process.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):  # noqa: S310  (loopback)
            return True
    except OSError:
        return False


def exchange(server, raw: bytes) -> tuple[int, dict, dict]:
    """Send raw bytes; the status, headers and JSON body of the answer."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


CHUNKED = (b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("raw, status", [
    (CHUNKED + b"ZZ\r\n{}\r\n0\r\n\r\n", 400),                     # a chunk size that is not hex
    (CHUNKED + b"2\r\n{}XX0\r\n\r\n", 400),                        # a chunk without its terminator
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),  # refused by gunicorn before the app
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    (b"GET /api/v1//products HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),  # was an HTML 308
])
def test_answers_are_json_with_security_headers_whoever_refuses(server, raw, status):
    got, headers, body = exchange(server, raw)
    assert got == status and body["code"] == status and set(body) == {"code", "status", "message", "errors"}
    assert headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff" and "default-src 'none'" in headers["content-security-policy"]
