"""Sign-in, the access token's claims, refresh rotation and reuse detection, logout, ending sessions."""

import time
import uuid

import jwt
import pytest

from tests.helpers import PASSWORD, bearer
from tests.identity.conftest import auth, events, login, rows

ME = "/api/v1/users/me"


def refresh(client, token):
    return client.post("/api/v1/auth/refresh", json={"refreshToken": token})


def test_login_issues_a_pair_whose_access_token_carries_the_specs_claims(app, client, user_of, db, settings):
    user = user_of("staff")
    response = login(client, user.email.upper())
    assert response.status_code == 200, response.json
    body = response.json
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 3600
    assert jwt.get_unverified_header(body["accessToken"])["alg"] == "HS256"
    claims = jwt.decode(body["accessToken"], settings.SECRET_KEY, algorithms=["HS256"])
    assert claims["sub"] == str(user.id) and claims["role"] == "staff" and claims["mfa"] is False
    assert claims["exp"] - claims["iat"] == 3600 and claims["jti"] and claims["sid"]
    assert client.get(ME, headers=auth(body)).json["email"] == user.email
    [(token_hash,)] = rows(db, "SELECT token_hash FROM refresh_tokens")
    assert body["refreshToken"] not in token_hash and len(token_hash) == 64
    assert [e.kind for e in events(db)] == ["login"]


def test_lifetimes_are_configurable(make_app, user_of):
    app = make_app(ACCESS_TOKEN_TTL=120)
    user = user_of()
    body = login(app.test_client(), user.email).json
    claims = jwt.decode(body["accessToken"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120 and body["expiresIn"] == 120


def test_wrong_password_and_unknown_email_get_the_same_401(client, user_of):
    user = user_of()
    wrong = login(client, user.email, "Wrong-passw0rd!")
    unknown = login(client, "nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json


def test_unverified_accounts_cannot_sign_in(client, user_of):
    user = user_of(is_verified=False)
    assert login(client, user.email).status_code == 403


def test_refresh_rotates_and_the_old_token_stops_working(client, user_of, db):
    first = login(client, user_of().email).json
    second = refresh(client, first["refreshToken"])
    assert second.status_code == 200 and second.json["refreshToken"] != first["refreshToken"]
    assert client.get(ME, headers=auth(second.json)).status_code == 200
    third = refresh(client, second.json["refreshToken"])
    assert third.status_code == 200
    assert rows(db, "SELECT count(*) FROM auth_sessions") == [(1,)]


def test_a_reused_refresh_token_revokes_its_whole_family(client, user_of, db):
    user = user_of()
    stolen = login(client, user.email).json
    legit = refresh(client, stolen["refreshToken"]).json
    reused = refresh(client, stolen["refreshToken"])
    assert reused.status_code == 401
    # The family is gone: the legitimate newer refresh token and its access token too.
    assert refresh(client, legit["refreshToken"]).status_code == 401
    assert client.get(ME, headers=auth(legit)).status_code == 401
    [(kind, actor, _, ip, _)] = events(db, "refresh_token_reuse")
    assert actor == user.id and ip == "127.0.0.1"
    assert rows(db, "SELECT revoked_reason FROM auth_sessions") == [("refresh_reuse",)]
    assert rows(db, "SELECT to_address, template FROM email_messages") == [("security@shop.localhost",
                                                                             "security_alert")]
    # Another sign-in of the same user is untouched.
    other = login(client, user.email).json
    assert client.get(ME, headers=auth(other)).status_code == 200


def test_an_expired_refresh_token_is_refused(client, user_of, db):
    tokens = login(client, user_of().email).json
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
    assert refresh(client, tokens["refreshToken"]).status_code == 401


def test_logout_ends_the_session_and_denies_the_access_token(app, client, user_of, db):
    tokens = login(client, user_of().email).json
    assert client.post("/api/v1/auth/logout", headers=auth(tokens)).status_code == 204
    assert client.get(ME, headers=auth(tokens)).status_code == 401
    assert refresh(client, tokens["refreshToken"]).status_code == 401
    [(jti_key_ttl,)] = [(app.extensions["shop"].redis.ttl(key),) for key in
                         app.extensions["shop"].redis.keys("auth:denied-jti:*")]
    assert 0 < jti_key_ttl <= 3600
    assert [e.kind for e in events(db)] == ["login", "logout"]


def test_a_password_change_ends_every_other_session(client, user_of, db):
    user = user_of()
    mine, other = login(client, user.email).json, login(client, user.email).json
    changed = client.patch(ME, headers=auth(mine), json={"currentPassword": PASSWORD, "password": "N3wPassw0rd!"})
    assert changed.status_code == 200, changed.json
    assert client.get(ME, headers=auth(mine)).status_code == 200
    assert refresh(client, mine["refreshToken"]).status_code == 200
    assert client.get(ME, headers=auth(other)).status_code == 401
    assert refresh(client, other["refreshToken"]).status_code == 401
    assert login(client, user.email, "N3wPassw0rd!").status_code == 200
    assert events(db, "password_changed")[0].details["sessions_ended"] == 1


def test_a_password_change_needs_the_current_password(client, user_of):
    tokens = login(client, user_of().email).json
    wrong = client.patch(ME, headers=auth(tokens), json={"currentPassword": "Nope-1234!", "password": "N3wPassw0rd!"})
    assert wrong.status_code == 400 and "currentPassword" in wrong.json["errors"]
    missing = client.patch(ME, headers=auth(tokens), json={"password": "N3wPassw0rd!"})
    assert missing.status_code == 422


def test_a_role_change_ends_every_session_of_that_user(app, client, user_of, db):
    admin, user = user_of("admin"), user_of()
    tokens = login(client, user.email).json
    changed = client.patch(f"/api/v1/users/{user.id}", headers=bearer(app, admin), json={"role": "staff"})
    assert changed.status_code == 200 and changed.json["role"] == "staff"
    assert client.get(ME, headers=auth(tokens)).status_code == 401
    assert refresh(client, tokens["refreshToken"]).status_code == 401
    again = login(client, user.email).json
    assert jwt.decode(again["accessToken"], options={"verify_signature": False})["role"] == "staff"
    assert rows(db, "SELECT template, context->>'account' FROM email_messages") == [
        ("security_alert", f"{user.email[0]}***@example.com")]
    [(_, actor, subject, _, details)] = events(db, "role_changed")
    assert (actor, subject, details["before"], details["after"]) == (admin.id, user.id, "customer", "staff")


# --- tampering ---------------------------------------------------------------

def _claims(settings, **changes):
    now = int(time.time())
    return {"sub": str(uuid.uuid4()), "role": "super_admin", "mfa": True, "sid": str(uuid.uuid4()),
            "jti": str(uuid.uuid4()), "type": "access", "fresh": False, "iat": now, "nbf": now,
            "exp": now + 600, **changes}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("forge", ["alg_none", "wrong_key", "expired", "hs512", "refresh_as_access"])
def test_tampered_tokens_are_refused(client, settings, user_of, forge):
    user = user_of("super_admin")
    claims = _claims(settings, sub=str(user.id))
    if forge == "alg_none":
        token = jwt.encode(claims, None, algorithm="none")
    elif forge == "wrong_key":
        token = jwt.encode(claims, "not-the-secret-key-not-the-secret-key", algorithm="HS256")
    elif forge == "expired":
        token = jwt.encode({**claims, "iat": claims["iat"] - 7200, "nbf": claims["iat"] - 7200,
                            "exp": claims["iat"] - 3600}, settings.SECRET_KEY, algorithm="HS256")
    elif forge == "hs512":
        token = jwt.encode(claims, settings.SECRET_KEY, algorithm="HS512")
    else:
        token = login(client, user.email).json["refreshToken"]
    response = client.get("/api/v1/settings", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert set(response.json) == {"code", "status", "message", "errors"}


def test_a_well_signed_token_of_another_type_is_refused(client, settings, user_of):
    user = user_of("super_admin")
    token = jwt.encode(_claims(settings, sub=str(user.id), type="refresh"), settings.SECRET_KEY, algorithm="HS256")
    assert client.get("/api/v1/settings", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_an_access_token_is_not_a_refresh_token(client, user_of):
    tokens = login(client, user_of().email).json
    assert refresh(client, tokens["accessToken"]).status_code == 401


def test_tokens_are_not_read_from_the_url(client, user_of):
    tokens = login(client, user_of().email).json
    assert client.get(f"{ME}?access_token={tokens['accessToken']}").status_code == 401
    assert client.get(f"{ME}?jwt={tokens['accessToken']}").status_code == 401


def test_the_revocation_check_rides_in_the_rate_limiters_round_trip_and_falls_back_to_its_own(
        app, client, user_of, monkeypatch):
    tokens = login(client, user_of().email).json
    redis = app.extensions["shop"].redis
    own_reads, read = [], redis.mget
    monkeypatch.setattr(redis, "mget", lambda *keys: own_reads.append(keys) or read(*keys))
    assert client.get(ME, headers=auth(tokens)).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=auth(tokens)).status_code == 204
    assert client.get(ME, headers=auth(tokens)).status_code == 401
    assert own_reads == []  # the limiter's script read the revocation keys
    # Where no rate-limit hit read them (outside the limits, or the limiter's Redis call failed), the guard does.
    monkeypatch.setattr("web.auth.guard.revocation_answer", lambda: None)
    assert client.get(ME, headers=auth(tokens)).status_code == 401
    assert len(own_reads) == 1


@pytest.mark.parametrize("header, status", [("Basic dXNlcjpwYXNz", 401), ("Bearer", 401), ("Bearer a b", 401),
                                            ("Bearer not-a-jwt", 401)])
def test_other_or_malformed_authorization_headers_never_sign_in(client, header, status):
    response = client.get(ME, headers={"Authorization": header})
    assert response.status_code == status and response.json["code"] == 401
