"""Identity and protocol classes that answered 500 or let something through."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import text

from integrations.payments.signing import sign
from tests.helpers import PASSWORD, bearer, make_user
from tests.identity.conftest import enrol_totp, login

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def rows(app, sql, **params):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


@pytest.fixture
def admin(app):
    with app.extensions["shop"].db.session() as session:
        user = make_user(session, "admin")
        session.expunge(user)
    return user


@pytest.mark.parametrize("digits", [FULLWIDTH, ARABIC_INDIC])
def test_totp_digits_of_other_scripts_are_a_wrong_code_at_confirm(app, client, admin, digits):
    import pyotp

    headers = bearer(app, admin, mfa=False)
    started = client.post("/api/v1/auth/mfa/totp", headers=headers).json
    code = pyotp.TOTP(started["secret"]).now().translate(digits)
    response = client.post("/api/v1/auth/mfa/totp/confirm", headers=headers, json={"code": code})
    assert response.status_code == 400 and response.json["errors"] == {"code": ["invalid"]}


def test_totp_digits_of_other_scripts_are_counted_as_failed_sign_in_steps(app, client, admin):
    totp, _ = enrol_totp(client, bearer(app, admin, mfa=False))
    token = login(client, admin.email).json["mfaToken"]
    for attempt in range(5):
        code = totp.now().translate(FULLWIDTH if attempt % 2 else ARABIC_INDIC)
        response = client.post("/api/v1/auth/login/mfa", json={"mfaToken": token, "code": code})
        assert response.status_code == 401, response.json
    assert len(rows(app, "SELECT 1 FROM security_events WHERE kind = 'mfa_failed'")) == 5
    # the fifth failure ended the pending sign-in: even the right code is refused now
    right = client.post("/api/v1/auth/login/mfa", json={"mfaToken": token, "code": totp.now()})
    assert right.status_code == 401


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti"])
def test_a_signed_access_token_without_each_required_claim_is_refused(app, client, admin, missing):
    with app.app_context():
        whole = bearer(app, admin)
        claims = {"role": "admin", "mfa": True, "sid": str(uuid.uuid4())}
        token = create_access_token(identity=str(admin.id), additional_claims=claims,
                                    expires_delta=False if missing == "exp" else None)
    if missing != "exp":
        import jwt as pyjwt

        payload = pyjwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
        del payload[missing]
        token = pyjwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert client.get("/api/v1/users/me", headers=whole).status_code == 200
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (missing, response.json)


def test_an_admin_cannot_clear_their_own_verification(app, client, admin):
    headers = bearer(app, admin)
    response = client.patch(f"/api/v1/users/{admin.id}", headers=headers, json={"isVerified": False})
    assert response.status_code == 403 and "isVerified" in response.json["errors"]
    assert rows(app, "SELECT is_verified FROM users WHERE id = :id", id=admin.id) == [(True,)]
    other = make_user_committed(app)
    assert client.patch(f"/api/v1/users/{other.id}", headers=headers, json={"isVerified": False}).status_code == 200
    assert login(client, admin.email, PASSWORD).status_code == 200


def make_user_committed(app):
    with app.extensions["shop"].db.session() as session:
        user = make_user(session)
        session.expunge(user)
    return user


def test_an_idempotency_key_over_255_characters_is_422_never_cut(app, client, variant, people):
    _, headers = people["customer"]
    body = {"items": [{"variantId": str(variant), "quantity": 1}],
            "shippingAddress": {"firstName": "A", "lastName": "B", "line1": "1 Road", "city": "X",
                                "postalCode": "1", "country": "GB"}}
    stem = "k" * 255
    too_long = client.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": stem + "a"})
    assert too_long.status_code == 422 and "Idempotency-Key" in json.dumps(too_long.json["errors"])
    first = client.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": stem})
    again = client.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": stem})
    assert first.status_code == again.status_code == 201 and first.json["id"] == again.json["id"]
    assert rows(app, "SELECT count(*) FROM orders") == [(1,)]


def test_retry_after_only_on_429_and_503(make_app):
    app = make_app(RATE_LIMIT_DEFAULT="2 per minute")
    client = app.test_client()
    answers = [client.get("/api/v1/users/me/permissions") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert all("Retry-After" not in a.headers for a in answers[:2])
    assert int(answers[2].headers["Retry-After"]) > 0


def test_a_503_keeps_our_retry_after_under_a_counted_rate_limit(make_app):
    """The limiter writes Retry-After on every counted answer (its window's reset, here up to an hour);
    a 503 during an outage must say OUR OUTAGE_RETRY_AFTER, or clients wait an hour for a 5 s blip."""
    with socket.socket() as sock:  # a port nothing listens on: the database is down, Redis is up
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(DATABASE_URL=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/shop", OUTAGE_RETRY_AFTER=7,
                   RATE_LIMIT_DEFAULT="1000 per hour", RATE_LIMIT_AUTH="1000 per hour")
    answer = app.test_client().post("/api/v1/auth/register", json={
        "email": "ada@example.com", "password": PASSWORD, "firstName": "Ada", "lastName": "Lovelace"})
    assert answer.status_code == 503 and answer.headers["X-RateLimit-Limit"] == "1000"  # the hit was counted
    assert answer.headers["Retry-After"] == "7"


@pytest.mark.parametrize("body", [b"{}", b"[]", b'"x"', b"null", b'{"id": 1, "type": "x"}',
                                  b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": []}',
                                  b'{"id": "evt_1", "type": "x", "data": {"object": {"id": 5}}}'])
def test_a_signed_webhook_of_an_unexpected_shape_is_400_and_a_security_event(app, client, body):
    secret = app.extensions["shop"].settings.SANDBOX_WEBHOOK_SECRET
    response = client.post("/api/v1/webhooks/stripe", data=body, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(body, secret, int(time.time()))})
    assert response.status_code == 400, response.json
    assert rows(app, "SELECT kind FROM security_events") == [("webhook_malformed",)]
    assert rows(app, "SELECT count(*) FROM webhook_events") == [(0,)]
