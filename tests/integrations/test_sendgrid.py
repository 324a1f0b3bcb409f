"""The SendGrid provider through the real `sendgrid` library, against a twin on loopback."""

import socket

import pytest
from sqlalchemy import text

from integrations.email.base import OutgoingEmail
from integrations.email.sendgrid import SendGridEmailProvider
from integrations.errors import PermanentError, TransientError
from tests.conftest import start_worker
from tests.helpers import dead_letters, wait_for
from tests.twins.sendgrid import SendGridTwin

EMAIL = OutgoingEmail(message_id="m-1", sender="Shop <no-reply@shop.test>", to="ada@example.com",
                      subject="Hello", text="plain body", html="<p>html body</p>")


@pytest.fixture(scope="module")
def twin():
    with SendGridTwin() as twin:
        yield twin


@pytest.fixture(autouse=True)
def reset_twin(twin):
    twin.script.clear()
    twin.requests.clear()
    twin.accepted.clear()


def provider(twin, **kwargs):
    return SendGridEmailProvider(kwargs.pop("api_key", twin.api_key), twin.url, timeout=2, **kwargs)


def test_sends_the_message_sendgrid_expects(twin):
    message_id = provider(twin).send(EMAIL)
    assert message_id and len(twin.accepted) == 1
    body = twin.accepted[0]
    assert body["from"] == {"email": "no-reply@shop.test", "name": "Shop"}
    assert body["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
    assert body["subject"] == "Hello"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["custom_args"] == {"shop_message_id": "m-1"}
    assert twin.requests[0]["headers"]["Authorization"] == f"Bearer {twin.api_key}"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_and_throttling_are_transient(twin, status):
    twin.script.append(status)
    with pytest.raises(TransientError, match=str(status)):
        provider(twin).send(EMAIL)


@pytest.mark.parametrize("status", [400, 403, 413])
def test_client_errors_are_permanent(twin, status):
    twin.script.append(status)
    with pytest.raises(PermanentError, match=str(status)):
        provider(twin).send(EMAIL)


def test_a_wrong_key_is_permanent(twin):
    with pytest.raises(PermanentError, match="401"):
        provider(twin, api_key="SG.wrong").send(EMAIL)


def test_an_unreachable_host_is_transient():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError, match="unreachable"):
        SendGridEmailProvider("SG.x", f"http://127.0.0.1:{port}", timeout=1).send(EMAIL)


@pytest.fixture(scope="module")
def sendgrid_worker(twin, tmp_path_factory):
    process = start_worker(tmp_path_factory.mktemp("sendgrid-worker"), EMAIL_PROVIDER="sendgrid",
                           SENDGRID_API_KEY=twin.api_key, SENDGRID_HOST=twin.url, SENDGRID_TIMEOUT="2")
    yield process
    process.stop()


def register(client, email):
    response = client.post("/api/v1/auth/register", json={
        "email": email, "password": "Passw0rd!", "firstName": "Ada", "lastName": "Lovelace"})
    assert response.status_code == 201


def status_of_email(app):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT status FROM email_messages")).scalar()


def test_worker_retries_a_5xx_and_then_sends(sendgrid_worker, twin, app, client):
    twin.script.append(503)
    register(client, "retry@example.com")
    wait_for(lambda: status_of_email(app) == "sent", timeout=20, message="the email to be sent")
    assert len(twin.requests) == 2 and len(twin.accepted) == 1
    assert twin.accepted[0]["subject"] == "Confirm your email address"


def test_worker_does_not_retry_a_4xx_and_dead_letters_it(sendgrid_worker, twin, app, client, settings):
    twin.script.append(400)
    register(client, "refused@example.com")
    [headers] = wait_for(lambda: dead_letters(settings.CELERY_BROKER_URL, "emails.dead"), timeout=15,
                         message="a dead letter")
    assert headers["task"] == "tasks.emails.send_email"
    assert len(twin.requests) == 1 and twin.accepted == []
    assert status_of_email(app) == "failed"
