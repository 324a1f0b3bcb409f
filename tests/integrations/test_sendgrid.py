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
    twin.clear()


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


# -- asking SendGrid what it accepted (Email Activity API) -----------------------------------------------------


def test_an_accepted_message_is_found_by_our_id_once_the_feed_shows_it(twin):
    twin.feed_delay = 0.5
    try:
        x_message_id = provider(twin).send(EMAIL)
        assert provider(twin).find_accepted("m-1") is None  # the feed lags behind Mail Send
        found = wait_for(lambda: provider(twin).find_accepted("m-1"), timeout=5, message="the feed to show it")
    finally:
        twin.feed_delay = 0.0
    assert found == x_message_id
    assert provider(twin).find_accepted("m-2") is None
    assert twin.lookups[-1]["path"] == "/v3/messages"
    assert twin.lookups[-1]["params"] == {"query": "unique_args['shop_message_id']=\"m-2\"", "limit": "10"}


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_lookup_the_feed_cannot_answer_now_is_transient(twin, status):
    twin.lookup_script.append(status)
    with pytest.raises(TransientError, match=str(status)):
        provider(twin).find_accepted("m-1")


@pytest.mark.parametrize("status", [400, 403])
def test_a_lookup_refused_for_good_is_permanent(twin, status):
    twin.lookup_script.append(status)
    with pytest.raises(PermanentError, match=str(status)):
        provider(twin).find_accepted("m-1")


@pytest.mark.parametrize("answer, refused", [(400, True), (429, True), (503, False), ("lost", False),
                                             ("cut", False)])
def test_an_error_says_whether_sendgrid_surely_did_not_accept(twin, answer, refused):
    twin.script.append(answer)
    with pytest.raises((TransientError, PermanentError)) as raised:
        provider(twin).send(EMAIL)
    assert raised.value.refused is refused
    assert len(twin.accepted) == (1 if answer == "lost" else 0)


def test_a_refused_connection_is_surely_not_accepted():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError) as raised:
        SendGridEmailProvider("SG.x", f"http://127.0.0.1:{port}", timeout=1).send(EMAIL)
    assert raised.value.refused is True


# -- the worker: one email per message whatever cut its attempts off ----------------------------------------------


def email_row(app):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT status, provider_message_id, attempted_at, last_error "
                                 "FROM email_messages")).one()


def test_a_message_never_tried_is_sent_without_asking(sendgrid_worker, twin, app, client):
    register(client, "first@example.com")
    wait_for(lambda: status_of_email(app) == "sent", timeout=20, message="the email to be sent")
    assert len(twin.requests) == 1 and len(twin.accepted) == 1 and twin.lookups == []


def test_an_attempt_accepted_but_unanswered_is_found_and_not_sent_again(sendgrid_worker, twin, app, client):
    twin.script.append("lost")  # SendGrid takes the mail, the worker never hears so
    register(client, "lost@example.com")
    wait_for(lambda: status_of_email(app) == "sent", timeout=30, message="the email to be found sent")
    assert len(twin.requests) == 1 and len(twin.accepted) == 1
    [lookup] = twin.lookups
    status, provider_id, attempted_at, _ = email_row(app)
    assert provider_id and lookup["params"]["query"] == f"unique_args['shop_message_id']=\"{scalar_id(app)}\""
    assert attempted_at is not None
    assert "email found sent by an earlier attempt" in sendgrid_worker.log()


def test_an_attempt_cut_off_before_sendgrid_took_it_is_sent_after_the_lag(sendgrid_worker, twin, app, client):
    twin.script.append("cut")  # the connection dies before SendGrid takes the mail
    register(client, "cut@example.com")
    wait_for(lambda: status_of_email(app) == "sent", timeout=30, message="the email to be sent")
    assert len(twin.requests) == 2 and len(twin.accepted) == 1
    assert len(twin.lookups) == 1
    # asked only once the lag (1 s in the suite) had passed since the attempt began, a moment before its request
    assert twin.lookups[0]["at"] - twin.requests[0]["at"] >= 0.5
    assert twin.requests[1]["at"] > twin.lookups[0]["at"]


def test_a_failed_lookup_is_retried_and_never_turns_into_a_resend(sendgrid_worker, twin, app, client):
    twin.script.append("lost")
    twin.lookup_script.extend([503, 503])
    register(client, "lookup@example.com")
    wait_for(lambda: status_of_email(app) == "sent", timeout=40, message="the email to be found sent")
    assert len(twin.lookups) == 3 and len(twin.requests) == 1 and len(twin.accepted) == 1


def test_a_feed_we_may_not_read_dead_letters_the_message_instead_of_resending(sendgrid_worker, twin, app, client,
                                                                               settings):
    twin.script.append("lost")
    twin.lookup_script.append(403)  # a key without Email Activity access
    register(client, "noaccess@example.com")
    [headers] = wait_for(lambda: dead_letters(settings.CELERY_BROKER_URL, "emails.dead"), timeout=30,
                         message="a dead letter")
    assert headers["task"] == "tasks.emails.send_email"
    status, _, attempted_at, last_error = email_row(app)
    assert status == "failed" and attempted_at is not None and "Email Activity API answered 403" in last_error
    assert len(twin.requests) == 1 and len(twin.accepted) == 1


def test_a_refused_message_clears_its_attempt_so_the_retry_asks_nothing(sendgrid_worker, twin, app, client):
    twin.script.append(429)  # SendGrid's own "not now": surely not accepted
    register(client, "throttled@example.com")
    wait_for(lambda: status_of_email(app) == "sent", timeout=20, message="the email to be sent")
    assert len(twin.requests) == 2 and len(twin.accepted) == 1 and twin.lookups == []


def scalar_id(app):
    with app.extensions["shop"].db.engine.connect() as conn:
        return str(conn.execute(text("SELECT id FROM email_messages")).scalar())
