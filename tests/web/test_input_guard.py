"""The input guard on a bare Flask app: what it refuses, naming the field, before any view runs; no services."""

import json

import pytest
from flask import Flask

from web import input as guard

pytestmark = pytest.mark.pure


@pytest.fixture
def client():
    app = Flask(__name__)
    guard.register(app)
    seen = []

    @app.route("/echo", methods=["GET", "POST"])
    def echo():
        seen.append(True)
        return {"ok": True}, 200, {"Retry-After": "5"}

    @app.route("/busy")
    def busy():
        return {"busy": True}, 429, {"Retry-After": "5"}

    client = app.test_client()
    client.seen = seen
    return client


def post(client, body: bytes):
    return client.post("/echo", data=body, content_type="application/json")


def test_json_deeper_than_the_limit_is_refused_unparsed(client):
    deep = guard.MAX_JSON_DEPTH + 1
    refused = post(client, b"[" * deep + b"]" * deep)
    assert refused.status_code == 400 and refused.json["errors"] == {"json": [f"Nested {deep} deep."]}
    assert post(client, b"[" * guard.MAX_JSON_DEPTH + b"]" * guard.MAX_JSON_DEPTH).status_code == 200
    brackets_in_a_string = json.dumps({"note": "[" * 100}).encode()
    assert post(client, brackets_in_a_string).status_code == 200
    assert client.seen == [True, True]


def test_a_number_longer_than_any_we_take_is_refused_but_digits_in_a_string_are_not(client):
    digits = "9" * (guard.MAX_DIGITS + 1)
    refused = post(client, f'{{"quantity": {digits}}}'.encode())
    assert refused.status_code == 400 and refused.json["errors"] == {"json": ["Number too long."]}
    assert post(client, f'{{"note": "{digits}"}}'.encode()).status_code == 200


def test_nul_anywhere_is_refused_naming_where(client):
    body = json.dumps({"items": [{"name": "ok"}, {"name": "te\x00a"}]}).encode()
    refused = post(client, body)
    assert refused.status_code == 422 and refused.json["errors"] == {"json": {"items.1.name": [guard.NUL_MESSAGE]}}
    refused = client.get("/echo", query_string={"q": "a\x00b"})
    assert refused.status_code == 422 and refused.json["errors"] == {"query": {"q": [guard.NUL_MESSAGE]}}
    refused = client.post("/echo", data={"title": "a\x00"}, content_type="multipart/form-data")
    assert refused.status_code == 422 and refused.json["errors"] == {"form": {"title": [guard.NUL_MESSAGE]}}
    assert client.seen == []


def test_retry_after_only_on_429_and_503(client):
    assert "Retry-After" not in client.get("/echo").headers
    assert client.get("/busy").headers["Retry-After"] == "5"
