"""Registration to verification through a real worker, and what happens when things fail."""

import re
from dataclasses import replace

from sqlalchemy import text

from tests.conftest import start_beat
from tests.helpers import dead_letters, mails, token_from, wait_for, wait_for_mail

REGISTER = "/api/v1/auth/register"


def register(client, email):
    response = client.post(REGISTER, json={"email": email, "password": "Passw0rd!", "firstName": "Grace",
                                           "lastName": "Hopper"})
    assert response.status_code == 201, response.json
    return response


def scalar(app, sql):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_registration_email_arrives_and_its_token_verifies(worker, client, mail_dir):
    response = register(client, "grace@example.com")
    message = wait_for_mail(mail_dir, "grace@example.com")
    assert message["Subject"] == "Confirm your email address"
    html = message.get_body(preferencelist=("html",)).get_content()
    token = token_from(message)
    assert token in html and "Grace" in html
    verified = client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json["isVerified"] is True
    # the request id of the registration follows the work into the worker's logs
    request_id = response.headers["X-Request-ID"]
    wait_for(lambda: re.search(rf'"email sent".*"request_id": "{request_id}"', worker.log()),
             message="the worker's log line with the request id")


def test_duplicated_delivery_sends_one_email(celery_app, worker, app, client, mail_dir):
    register(client, "dup@example.com")
    message_id = str(scalar(app, "SELECT id FROM email_messages"))
    for n in range(3):  # the same task delivered three more times, as a redelivery would
        celery_app.send_task("tasks.emails.send_email", kwargs={"message_id": message_id}, task_id=f"dup-{n}")
    wait_for(lambda: worker.log().count("'already handled'") >= 3 and "dup-2" in worker.log(), timeout=15,
             message="every delivery to be handled")
    assert len(mails(mail_dir, "dup@example.com")) == 1
    assert scalar(app, "SELECT status FROM email_messages") == "sent"


def test_a_dead_broker_at_commit_loses_nothing(worker, settings, mail_dir, tmp_path):
    from web import create_app

    broken = create_app(replace(settings, CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:1//",
                                SERVICE_TIMEOUT=1.0))
    try:
        response = register(broken.test_client(), "outage@example.com")
        assert response.status_code == 201
        # the background publisher records the failure, so the next sweep takes the row at once
        wait_for(lambda: scalar(broken, "SELECT attempts FROM outbox WHERE published_at IS NULL") == 1,
                 message="the failed publish to be recorded")
    finally:
        broken.extensions["shop"].relay.close()
        broken.extensions["shop"].db.dispose()
    beat = start_beat(tmp_path)  # the sweeper republishes once the broker is back
    try:
        message = wait_for_mail(mail_dir, "outage@example.com", timeout=30)
    finally:
        beat.stop()
    assert token_from(message)
    assert len(mails(mail_dir, "outage@example.com")) == 1


def test_transient_failures_retry_with_backoff_then_dead_letter(worker, app, client, settings):
    register(client, "down@transient.invalid")
    wait_for(lambda: scalar(app, "SELECT status FROM email_messages") == "failed", timeout=40,
             message="the email to be marked failed")
    [task_id] = wait_for(lambda: [h["id"] for h in dead_letters(settings.CELERY_BROKER_URL, "emails.dead")],
                         timeout=10, message="a dead letter")
    assert worker.log().count(f"send_email[{task_id}] retry") == 3
    assert "simulated provider outage" in scalar(app, "SELECT last_error FROM email_messages")


def test_a_permanent_failure_dead_letters_at_once(worker, app, client, settings):
    register(client, "nobody@reject.invalid")
    [headers] = wait_for(lambda: dead_letters(settings.CELERY_BROKER_URL, "emails.dead"), timeout=15,
                         message="a dead letter")
    assert headers["task"] == "tasks.emails.send_email"
    assert f"send_email[{headers['id']}] retry" not in worker.log()
    assert scalar(app, "SELECT status FROM email_messages") == "failed"
    assert "rejected" in scalar(app, "SELECT last_error FROM email_messages")


def test_after_a_failed_publish_rows_go_to_the_sweep_without_another_attempt(settings):
    from web import create_app

    broken = create_app(replace(settings, CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:1//",
                                SERVICE_TIMEOUT=1.0))
    client = broken.test_client()
    failed = "SELECT count(*) FROM outbox WHERE published_at IS NULL AND attempts = 1"
    try:
        register(client, "first@example.com")
        wait_for(lambda: scalar(broken, failed) == 1, message="the first failure to be recorded")
        relay = broken.extensions["shop"].relay
        calls = []
        relay.publish = lambda *args: calls.append(args)  # would record any attempt
        register(client, "second@example.com")
        wait_for(lambda: scalar(broken, failed) == 2, message="the second row to be left to the sweep")
        assert calls == []
    finally:
        broken.extensions["shop"].relay.close()
        broken.extensions["shop"].db.dispose()
