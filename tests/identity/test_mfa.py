"""TOTP enrolment, the second sign-in step, replay, recovery codes, and MFA step-up for admin actions."""

import jwt

from tests.identity.conftest import auth, enrol_totp, events, login, next_code, rows

SETTINGS = "/api/v1/settings"


def mfa_login(client, email, code):
    first = login(client, email)
    assert first.status_code == 200 and first.json["mfaRequired"] is True and "accessToken" not in first.json
    return client.post("/api/v1/auth/login/mfa", json={"mfaToken": first.json["mfaToken"], "code": code})


def test_enrolment_gives_a_secret_and_uri_then_ten_hashed_recovery_codes(client, user_of, db):
    user = user_of()
    headers = auth(login(client, user.email).json)
    started = client.post("/api/v1/auth/mfa/totp", headers=headers).json
    assert started["otpauthUri"].startswith("otpauth://totp/") and started["secret"] in started["otpauthUri"]
    totp, codes = enrol_totp(client, headers)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = [row.code_hash for row in rows(db, "SELECT code_hash FROM recovery_codes")]
    assert len(stored) == 10 and not set(codes) & set(stored)
    [(secret,)] = rows(db, "SELECT secret FROM totp_credentials")
    assert totp.secret not in secret
    assert [e.kind for e in events(db, "mfa_enabled")] == ["mfa_enabled"]
    again = client.post("/api/v1/auth/mfa/totp", headers=headers)
    assert again.status_code == 409


def test_a_wrong_confirmation_code_is_refused(client, user_of):
    headers = auth(login(client, user_of().email).json)
    client.post("/api/v1/auth/mfa/totp", headers=headers)
    response = client.post("/api/v1/auth/mfa/totp/confirm", headers=headers, json={"code": "000000"})
    assert response.status_code == 400 and "code" in response.json["errors"]


def test_an_enrolled_user_needs_the_second_step_and_gets_an_mfa_token(client, user_of, settings):
    user = user_of("admin")
    totp, _ = enrol_totp(client, auth(login(client, user.email).json))
    response = mfa_login(client, user.email, next_code(totp))
    assert response.status_code == 200, response.json
    claims = jwt.decode(response.json["accessToken"], settings.SECRET_KEY, algorithms=["HS256"])
    assert claims["mfa"] is True and claims["role"] == "admin"
    assert client.get(SETTINGS, headers=auth(response.json)).status_code == 200
    # A refresh keeps the session's MFA.
    refreshed = client.post("/api/v1/auth/refresh", json={"refreshToken": response.json["refreshToken"]}).json
    assert jwt.decode(refreshed["accessToken"], options={"verify_signature": False})["mfa"] is True


def test_a_code_is_accepted_once(client, user_of):
    user = user_of()
    totp, _ = enrol_totp(client, auth(login(client, user.email).json))
    code = next_code(totp)
    assert mfa_login(client, user.email, code).status_code == 200
    replay = mfa_login(client, user.email, code)
    assert replay.status_code == 401
    # The code used to confirm enrolment cannot be replayed either.
    assert mfa_login(client, user.email, totp.now()).status_code == 401


def test_the_mfa_token_is_single_use_and_wrong_codes_are_counted(client, user_of, db):
    user = user_of()
    totp, _ = enrol_totp(client, auth(login(client, user.email).json))
    token = login(client, user.email).json["mfaToken"]
    for _ in range(5):
        assert client.post("/api/v1/auth/login/mfa", json={"mfaToken": token, "code": "123456"}).status_code == 401
    # After 5 wrong codes the pending sign-in is gone, even for the right code.
    right = client.post("/api/v1/auth/login/mfa", json={"mfaToken": token, "code": next_code(totp)})
    assert right.status_code == 401
    assert len(events(db, "mfa_failed")) == 5


def test_recovery_codes_work_once(client, user_of, db):
    user = user_of()
    _, codes = enrol_totp(client, auth(login(client, user.email).json))
    assert mfa_login(client, user.email, codes[0]).status_code == 200
    assert mfa_login(client, user.email, codes[0]).status_code == 401
    assert mfa_login(client, user.email, codes[1].upper()).status_code == 200
    assert rows(db, "SELECT count(*) FROM recovery_codes WHERE used_at IS NOT NULL") == [(2,)]


def test_admin_actions_need_a_token_that_records_mfa(client, user_of, db):
    admin = user_of("admin")
    body = login(client, admin.email).json
    assert body["mfaEnrolmentRequired"] is True
    refused = client.get(SETTINGS, headers=auth(body))
    assert refused.status_code == 403 and "MFA is required" in refused.json["message"]
    # Staff-level actions need no step-up.
    assert client.get("/api/v1/users/me", headers=auth(body)).status_code == 200


def test_enrolment_is_not_demanded_when_turned_off(make_app, user_of):
    client = make_app(REQUIRE_MFA_FOR_ADMINS=False).test_client()
    assert "mfaEnrolmentRequired" not in login(client, user_of("admin").email).json


def test_api_keys_cannot_set_up_mfa(app, client, user_of):
    from tests.helpers import bearer

    created = client.post("/api/v1/api-keys", headers=bearer(app, user_of("admin")),
                          json={"name": "k", "scopes": ["users:view_all"]}).json
    key = {"X-API-Key": created["key"]}
    assert client.post("/api/v1/auth/mfa/totp", headers=key).status_code == 403
    assert client.post("/api/v1/auth/mfa/totp/confirm", headers=key, json={"code": "123456"}).status_code == 403
    assert client.post("/api/v1/auth/logout", headers=key).status_code == 403  # a key acts for no person
