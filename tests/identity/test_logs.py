"""A full flow with known PII and secrets, through the API and a real worker: none of it reaches the logs."""

import logging

from tests.helpers import token_from, wait_for_mail
from tests.identity.conftest import auth, enrol_totp

EMAIL = "Grace.Hopper@example.com"
PASSWORD = "Cobol1959!x"
NEW_PASSWORD = "Nanosecond11!"
FIRST, LAST = "Gracielle", "Hopperstein"
ADDRESS = {"firstName": FIRST, "lastName": LAST, "line1": "77 Mark Seven Road", "city": "Arlingtonville",
           "postalCode": "22202", "country": "US", "phone": "+1 555 010 9999"}


def test_logs_carry_no_pii_passwords_or_tokens(make_app, worker, mail_dir, capsys):
    app = make_app()
    client = app.test_client()
    logging.getLogger("test.flow").info("signing in %s with Bearer abc.def.ghi", EMAIL.lower())
    assert client.post("/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD,
                                                      "firstName": FIRST, "lastName": LAST}).status_code == 201
    verify_token = token_from(wait_for_mail(mail_dir, EMAIL.lower(), timeout=30))
    assert client.post("/api/v1/auth/verify-email", json={"token": verify_token}).status_code == 200
    assert client.post("/api/v1/auth/login", json={"email": EMAIL, "password": "Wrong0ne!"}).status_code == 401
    tokens = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}).json
    headers = auth(tokens)
    assert client.post("/api/v1/users/me/addresses", headers=headers, json=ADDRESS).status_code == 201
    totp, codes = enrol_totp(client, headers)
    secret = client.post("/api/v1/auth/mfa/totp", headers=headers)  # 409: already enrolled
    assert secret.status_code == 409
    changed = client.patch("/api/v1/users/me", headers=headers,
                           json={"currentPassword": PASSWORD, "password": NEW_PASSWORD})
    assert changed.status_code == 200
    refreshed = client.post("/api/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}).json
    assert client.post("/api/v1/auth/logout", headers=auth(refreshed)).status_code == 204

    captured = capsys.readouterr()
    logs = captured.out + captured.err + worker.log()
    assert '"logger": "web.access"' in logs and "email sent" in logs  # the logs were captured
    assert "g***@example.com" in logs  # emails appear masked
    secrets = [EMAIL, EMAIL.lower(), PASSWORD, NEW_PASSWORD, FIRST, LAST, ADDRESS["line1"], ADDRESS["phone"],
               ADDRESS["city"], verify_token, tokens["accessToken"], tokens["refreshToken"],
               refreshed["accessToken"], refreshed["refreshToken"], totp.secret, *codes]
    leaked = [value for value in secrets if value in logs]
    assert leaked == []

