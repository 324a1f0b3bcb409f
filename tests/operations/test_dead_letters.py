"""Dead letters end to end: a real worker gives up on a task, an admin lists it, the vendor recovers,
the replay runs it once under the same task id; the CLI lists, shows, drops and replays."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.helpers import bearer, make_user, wait_for
from tests.integrations.test_sendgrid import register, reset_twin  # noqa: F401  (autouse: the twin accepts again)

DEAD = "/api/v1/admin/dead-letters"


def user(app, role):
    with app.extensions["shop"].db.session() as session:
        person = make_user(session, role)
        session.expunge(person)
    return person


def scalar(app, sql, **params):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def listed(client, headers, count):
    seen = []

    def check():
        response = client.get(DEAD, headers=headers)
        assert response.status_code == 200, response.json
        seen[:] = response.json["items"]
        return len(seen) == count
    wait_for(check, timeout=30, interval=0.3, message=f"{count} dead letter(s), seen {seen}")
    return seen


def test_failed_for_good_then_listed_fixed_replayed_and_run_once(sendgrid_worker, twin, app, client):
    admin = bearer(app, user(app, "admin"))
    twin.script.append(400)  # SendGrid refuses the message: a permanent error, no retry
    register(client, "ada.lovelace@example.com")

    [letter] = listed(client, admin, 1)
    task_id = scalar(app, "SELECT id FROM outbox WHERE task = 'tasks.emails.send_email'")
    assert letter["id"] == str(task_id)
    assert (letter["queue"], letter["task"], letter["reason"], letter["deathCount"]) == (
        "emails", "tasks.emails.send_email", "rejected", 1)
    assert "400" in letter["error"] and "PermanentError" in letter["tracebackLastLine"]
    assert letter["firstDeathAt"] and letter["firstDeathAt"] == letter["lastDeathAt"]
    assert list(letter["kwargs"]) == ["message_id"]
    assert scalar(app, "SELECT status FROM email_messages") == "failed"
    assert listed(client, admin, 1) == [letter]  # reading leaves it in place
    assert client.get(f"{DEAD}/{task_id}", headers=admin).json == letter
    assert len(twin.accepted) == 0

    # The vendor is fixed (the twin answers 202 again); the replay runs the same task id once.
    replayed = client.post(f"{DEAD}/{task_id}/replay", headers=admin)
    assert replayed.status_code == 200, replayed.json
    wait_for(lambda: scalar(app, "SELECT status FROM email_messages") == "sent", timeout=30,
             message="the replayed email to be sent")
    assert len(twin.accepted) == 1
    assert listed(client, admin, 0) == []
    event = scalar(app, "SELECT details FROM security_events WHERE kind = 'dead_letter_replayed'")
    assert event["task_id"] == str(task_id) and event["queue"] == "emails"
    assert client.post(f"{DEAD}/{task_id}/replay", headers=admin).status_code == 404


def test_personal_data_in_arguments_is_masked(app, client, settings):
    from kombu import Connection

    admin = bearer(app, user(app, "admin"))
    body = json.dumps([["ada@example.com"], {"email": "ada@example.com", "order_id": 7,
                                             "note": "call Ada at ada@example.com"}, {}])
    headers = {"id": "t-1", "task": "tasks.emails.anything",
               "x-death": [{"count": 2, "reason": "rejected", "queue": "emails", "time": 1_700_000_000}]}
    with Connection(settings.CELERY_BROKER_URL) as conn:
        conn.Producer().publish(body, exchange="shop.dead", routing_key="emails", headers=headers,
                                content_type="application/json", content_encoding="utf-8")
    [letter] = listed(client, admin, 1)
    assert "ada@example.com" not in json.dumps(letter)
    assert letter["args"] == ["a***@example.com"]
    assert letter["kwargs"] == {"email": "***", "order_id": 7, "note": "call Ada at a***@example.com"}
    assert letter["deathCount"] == 2 and letter["firstDeathAt"].startswith("2023-11-14T22:13:20")


def test_only_admins_with_mfa_and_clear_errors(app, client):
    admin = user(app, "admin")
    assert client.get(DEAD).status_code == 401
    assert client.get(DEAD, headers=bearer(app, user(app, "staff"))).status_code == 403
    without_mfa = client.get(DEAD, headers=bearer(app, admin, mfa=False))
    assert without_mfa.status_code == 403 and without_mfa.json["errors"] == {"mfa": ["required"]}
    bad = client.get(f"{DEAD}?queue=nope&limit=0", headers=bearer(app, admin))
    assert bad.status_code == 422 and set(bad.json["errors"]["query"]) == {"queue", "limit"}
    missing = client.delete(f"{DEAD}/no-such-task", headers=bearer(app, admin))
    assert missing.status_code == 404 and "no-such-task" in missing.json["message"]


def test_cli_lists_shows_drops_and_replays_all(sendgrid_worker, twin, app, client):
    twin.script.extend([400, 400])
    register(client, "grace@example.com")
    register(client, "alan@example.com")
    runner = app.test_cli_runner()
    wait_for(lambda: len(runner.invoke(args=["queues", "dead", "list", "--queue", "emails"]).stdout.splitlines()) == 2,
             timeout=30, interval=0.3, message="two dead letters")
    first, second = [line.split()[0] for line in
                     runner.invoke(args=["queues", "dead", "list"]).stdout.splitlines()]

    shown = runner.invoke(args=["queues", "dead", "show", first])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == first

    dropped = runner.invoke(args=["queues", "dead", "drop", first])
    assert dropped.exit_code == 0 and first in dropped.stdout
    assert runner.invoke(args=["queues", "dead", "show", first]).exit_code == 1

    replayed = runner.invoke(args=["queues", "dead", "replay", "--all", "--queue", "emails", "--rate", "5"])
    assert replayed.exit_code == 0 and second in replayed.stdout
    wait_for(lambda: len(twin.accepted) == 1, timeout=30, message="the replayed email")
    assert runner.invoke(args=["queues", "dead", "list"]).stdout == ""
    kinds = scalar(app, "SELECT string_agg(kind || ':' || (details->>'task_id'), ',' ORDER BY id) FROM security_events "
                        "WHERE kind LIKE 'dead_letter%'")
    assert kinds == f"dead_letter_dropped:{first},dead_letter_replayed:{second}"
    assert runner.invoke(args=["queues", "dead", "replay", first, "--all"]).exit_code == 2
