"""Lockout after consecutive failures, its expiry, alerts, and no account enumeration."""

import pytest

from models.users import auth as auth_module
from tests.helpers import bearer, wait_for
from tests.identity.conftest import events, login, rows

WRONG = "Wrong-passw0rd!"


def fail(client, email, times):
    return [login(client, email, WRONG).status_code for _ in range(times)]


def test_five_failures_lock_the_account_even_against_the_right_password(client, user_of, db):
    user = user_of()
    assert fail(client, user.email, 5) == [401] * 5
    locked = login(client, user.email)
    assert locked.status_code == 401 and "locked" in locked.json["message"]
    kinds = [e.kind for e in events(db)]
    assert kinds == ["login_failed"] * 5 + ["lockout", "login_locked"]
    lockout = events(db, "lockout")[0]
    assert lockout.actor_user_id == user.id and lockout.ip == "127.0.0.1"
    assert lockout.details["email"] == f"{user.email[0]}***@example.com"
    mails = rows(db, "SELECT to_address, template FROM email_messages ORDER BY created_at")
    assert sorted(mails) == sorted([(user.email, "account_locked"), ("security@shop.localhost", "security_alert")])


def test_a_success_resets_the_count(client, user_of):
    user = user_of()
    fail(client, user.email, 4)
    assert login(client, user.email).status_code == 200
    fail(client, user.email, 4)
    assert login(client, user.email).status_code == 200


def test_the_lockout_expires(make_app, user_of):
    client = make_app(LOCKOUT_SECONDS=5, LOGIN_MAX_FAILURES=3).test_client()
    user = user_of()
    assert fail(client, user.email, 3) == [401] * 3
    assert login(client, user.email).status_code == 401
    wait_for(lambda: login(client, user.email).status_code == 200, timeout=30, interval=0.2,
             message="the lockout to expire")


def test_unknown_emails_get_the_same_answers_including_the_lock(client, user_of):
    user = user_of()
    real = [login(client, user.email, WRONG).json for _ in range(6)]
    ghost = [login(client, "ghost@example.com", WRONG).json for _ in range(6)]
    assert real == ghost
    assert "locked" in ghost[-1]["message"]


def test_unknown_emails_cost_a_password_hash_too(client, user_of, monkeypatch):
    checked = []
    real_verify = auth_module.verify_password
    monkeypatch.setattr(auth_module, "verify_password", lambda h, p: checked.append(h) or real_verify(h, p))
    user = user_of()
    login(client, "ghost@example.com", WRONG)
    login(client, user.email, WRONG)
    fail(client, user.email, 5)
    login(client, user.email)  # locked: still hashed
    assert len(checked) == 8
    assert checked[0] == auth_module.DUMMY_HASH and all(h.startswith("$argon2id$") for h in checked)


def test_the_per_ip_limit_stops_spraying_across_accounts(make_app, user_of):
    client = make_app(RATE_LIMIT_AUTH="5 per minute").test_client()
    emails = [user_of().email for _ in range(6)]
    statuses = [login(client, email, WRONG).status_code for email in emails]
    assert statuses == [401] * 5 + [429]
    # Another address is not affected.
    other = login(client, emails[0], environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/auth/register", "/api/v1/auth/verify-email", "/api/v1/auth/login/mfa",
                                  "/api/v1/auth/refresh"])
def test_the_other_sign_in_endpoints_have_the_tight_limit(make_app, path):
    client = make_app(RATE_LIMIT_AUTH="2 per minute").test_client()
    statuses = [client.post(path, json={}).status_code for _ in range(3)]
    assert statuses == [422, 422, 429]


def test_the_user_and_the_security_team_receive_the_lockout_emails(client, user_of, worker, mail_dir):
    from tests.helpers import wait_for_mail

    user = user_of()
    fail(client, user.email, 5)
    to_user = wait_for_mail(mail_dir, user.email, timeout=30)
    to_team = wait_for_mail(mail_dir, "security@shop.localhost", timeout=30)
    assert "locked" in to_user["Subject"] and to_team["Subject"] == "Security alert: lockout"
    assert user.email not in to_team.get_body(preferencelist=("plain",)).get_content()


def test_an_admin_with_mfa_lifts_a_lockout_before_it_expires(app, client, user_of, db):
    user, admin, other = user_of(), user_of("admin"), user_of()
    fail(client, user.email, 5)
    assert login(client, user.email).status_code == 401
    path = f"/api/v1/users/{user.id}/unlock"
    assert client.post(path, headers=bearer(app, admin, mfa=False)).status_code == 403
    assert client.post(path, headers=bearer(app, other)).status_code == 403
    assert login(client, user.email).status_code == 401  # refusals lifted nothing

    lifted = client.post(path, headers=bearer(app, admin))
    assert lifted.status_code == 200 and lifted.json == {"wasLocked": True}
    assert login(client, user.email).status_code == 200
    [event] = events(db, "lockout_lifted")
    assert (event.actor_user_id, event.subject_user_id, event.details["was_locked"]) == (admin.id, user.id, True)
    assert client.post("/api/v1/users/00000000-0000-0000-0000-000000000000/unlock",
                       headers=bearer(app, admin)).status_code == 404


def test_the_cli_lifts_a_lockout_too(app, client, user_of, db):
    user = user_of()
    fail(client, user.email, 5)
    result = app.test_cli_runner().invoke(args=["security", "unlock", user.email.upper()])
    assert result.exit_code == 0 and "lockout lifted" in result.output
    assert login(client, user.email).status_code == 200
    assert [e.subject_user_id for e in events(db, "lockout_lifted")] == [user.id]
