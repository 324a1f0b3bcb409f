"""POST /auth/register and /auth/verify-email, every bad input included."""

import pytest
from sqlalchemy import text

from tests.helpers import token_from, wait_for, wait_for_mail

URL = "/api/v1/auth/register"
GOOD = {"email": "Ada@Example.com", "password": "Passw0rd!", "firstName": "Ada", "lastName": "Lovelace"}


def fields_named(response):
    assert response.status_code == 422, response.json
    assert set(response.json) == {"code", "status", "message", "errors"}
    return set(response.json["errors"]["json"])


def rows(app, sql, **params):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_register_creates_an_unverified_customer_and_queues_one_email(app, client):
    response = client.post(URL, json=GOOD)
    assert response.status_code == 201
    body = response.json
    assert body["email"] == "ada@example.com" and body["isVerified"] is False and "password" not in body
    [(email, role, verified, password_hash)] = rows(
        app, "SELECT email, role, is_verified, password_hash FROM users WHERE id = :id", id=body["id"])
    assert (email, role, verified) == ("ada@example.com", "customer", False)
    assert password_hash.startswith("$argon2id$") and "Passw0rd!" not in password_hash
    [(template, to, status)] = rows(app, "SELECT template, to_address, status FROM email_messages")
    assert (template, to, status) == ("verify_email", "ada@example.com", "queued")
    [(task,)] = rows(app, "SELECT task FROM outbox")
    assert task == "tasks.emails.send_email"
    wait_for(lambda: rows(app, "SELECT 1 FROM outbox WHERE published_at IS NOT NULL"),
             message="the background publisher to publish the row")


def test_duplicate_email_is_409_whatever_its_case(client):
    assert client.post(URL, json=GOOD).status_code == 201
    again = client.post(URL, json={**GOOD, "email": "  ADA@example.COM "})
    assert again.status_code == 409 and "email" in again.json["errors"]


@pytest.mark.parametrize("password", [
    "Sh0rt!",            # under 8
    "alllower1!",        # no uppercase
    "ALLUPPER1!",        # no lowercase
    "NoDigits!!",        # no number
    "NoSpecial12",       # no special character
    "A1!a" * 40,         # over 128
    "P@ssw0rd",          # one of the most common passwords (zxcvbn's list), whatever its case
    "Tab\tbed1!A",       # a control character
])
def test_password_rule_of_create_user_dto(client, password):
    assert fields_named(client.post(URL, json={**GOOD, "password": password})) == {"password"}


@pytest.mark.parametrize("password", [
    "Has space1 A",      # a space is a special character
    "Hash#tag1A",        # so is '#'
    "Pässwörd1€",        # non-ASCII letters; '€' is special
    "ＰａｓｓＷ０ｒｄ！x",   # fullwidth letters and digits
    "Ωmega-Σigma-9",     # Greek upper and lower case
])
def test_any_printable_unicode_counts_in_the_four_classes(client, password):
    assert client.post(URL, json={**GOOD, "password": password}).status_code == 201, password


@pytest.mark.parametrize("body, named", [
    ({}, {"email", "password", "firstName", "lastName"}),
    ({**GOOD, "email": "not-an-email"}, {"email"}),
    ({**GOOD, "email": "x" * 250 + "@example.com"}, {"email"}),
    ({**GOOD, "firstName": ""}, {"firstName"}),
    ({**GOOD, "firstName": "   "}, {"firstName"}),
    ({**GOOD, "lastName": "L" * 101}, {"lastName"}),
    ({**GOOD, "firstName": 42}, {"firstName"}),
    ({**GOOD, "email": None}, {"email"}),
    ({**GOOD, "role": "admin"}, {"role"}),
    ({**GOOD, "isVerified": True}, {"isVerified"}),
])
def test_bad_input_names_the_fields(client, body, named):
    assert fields_named(client.post(URL, json=body)) == named


@pytest.mark.parametrize("payload", [[GOOD], "a string", 12])
def test_body_that_is_not_an_object(client, payload):
    response = client.post(URL, json=payload)
    assert response.status_code == 422 and response.json["errors"]


def test_body_that_is_not_json(client):
    response = client.post(URL, data="email=a@b.c", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 422 and "email" in response.json["errors"]["json"]


def test_nothing_is_written_for_bad_input(app, client):
    client.post(URL, json={**GOOD, "password": "weak"})
    assert rows(app, "SELECT count(*) FROM users")[0][0] == 0
    assert rows(app, "SELECT count(*) FROM outbox")[0][0] == 0


def send_queued_email(app):
    """Run the emails task's body here, as the worker would (not eager mode: a plain call)."""
    from tasks.emails import send_email

    [(message_id,)] = rows(app, "SELECT id FROM email_messages WHERE status = 'queued'")
    assert send_email(str(message_id)) == "sent"


def register_and_get_token(app, client, mail_dir):
    client.post(URL, json=GOOD)
    send_queued_email(app)
    return token_from(wait_for_mail(mail_dir, "ada@example.com", timeout=1))


def test_the_emailed_token_verifies_once(app, client, mail_dir):
    token = register_and_get_token(app, client, mail_dir)
    assert rows(app, "SELECT count(*) FROM user_tokens WHERE token_hash = :t", t=token)[0][0] == 0  # hashed
    verified = client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json["isVerified"] is True
    assert rows(app, "SELECT is_verified FROM users")[0][0] is True
    reused = client.post("/api/v1/auth/verify-email", json={"token": token})
    assert reused.status_code == 400 and "token" in reused.json["errors"]


def test_an_expired_token_is_refused(app, client, mail_dir):
    token = register_and_get_token(app, client, mail_dir)
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text("UPDATE user_tokens SET expires_at = now() - interval '1 second'"))
    response = client.post("/api/v1/auth/verify-email", json={"token": token})
    assert response.status_code == 400
    assert rows(app, "SELECT is_verified FROM users")[0][0] is False


@pytest.mark.parametrize("token", ["forged-token", "A" * 43, "x"])
def test_a_forged_token_is_refused(app, client, mail_dir, token):
    register_and_get_token(app, client, mail_dir)
    response = client.post("/api/v1/auth/verify-email", json={"token": token})
    assert response.status_code == 400 and response.json["code"] == 400
    assert rows(app, "SELECT is_verified FROM users")[0][0] is False


@pytest.mark.parametrize("body, named", [({}, {"token"}), ({"token": ""}, {"token"}), ({"token": 5}, {"token"}),
                                         ({"token": "t" * 201}, {"token"})])
def test_verify_bad_input(client, body, named):
    assert fields_named(client.post("/api/v1/auth/verify-email", json=body)) == named


def test_sending_twice_sends_once(app, client, mail_dir):
    from tasks.emails import send_email

    client.post(URL, json=GOOD)
    [(message_id,)] = rows(app, "SELECT id FROM email_messages")
    assert send_email(str(message_id)) == "sent"
    assert send_email(str(message_id)) == "already handled"
    assert len(list(mail_dir.glob("*.eml"))) == 1
