"""OIDC sign-in against a provider running on loopback: state, nonce, PKCE and the ID token's checks."""

import urllib.parse
import urllib.request

import jwt
import pytest

from tests.helpers import make_user
from tests.identity.conftest import auth, enrol_totp, events, login, rows
from tests.twins.oidc import OidcTwin, new_key


@pytest.fixture(scope="module")
def provider():
    with OidcTwin() as twin:
        yield twin


@pytest.fixture
def oidc_app(make_app, provider):
    provider.claims = {"sub": "user-1", "email": "oidc.user@example.com", "email_verified": True,
                       "given_name": "Olive", "family_name": "Idsen"}
    provider.signing_key, provider.nonce_override = provider.key, None
    return make_app(OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=provider.client_id,
                    OIDC_CLIENT_SECRET=provider.client_secret, OIDC_PROVIDER="local",
                    OIDC_REDIRECT_BASE="http://shop.test")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def at_provider(url: str) -> str:
    """Visit the provider's authorize URL (it approves at once); return where it sends the browser."""
    try:
        urllib.request.build_opener(NoRedirect).open(url)  # noqa: S310
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302
        return redirect.headers["Location"]
    raise AssertionError("the provider did not redirect")


def start(client) -> tuple[str, dict]:
    response = client.get("/api/v1/auth/oauth/local/authorize")
    assert response.status_code == 302
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(response.location).query))
    return response.location, query


def callback_path(location: str) -> str:
    url = urllib.parse.urlsplit(location)
    assert url.netloc == "shop.test"
    return f"{url.path}?{url.query}"


def test_the_authorization_request_carries_state_nonce_and_pkce(oidc_app, provider):
    _, query = start(oidc_app.test_client())
    assert query["response_type"] == "code" and query["client_id"] == provider.client_id
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) > 30 and len(query["nonce"]) > 30 and query["state"] != query["nonce"]
    assert query["redirect_uri"] == "http://shop.test/api/v1/auth/oauth/local/callback"


def test_sign_in_creates_a_verified_customer_and_issues_our_tokens(oidc_app, provider, db, settings):
    client = oidc_app.test_client()
    location, _ = start(client)
    response = client.get(callback_path(at_provider(location)))
    assert response.status_code == 200, response.json
    claims = jwt.decode(response.json["accessToken"], settings.SECRET_KEY, algorithms=["HS256"])
    me = client.get("/api/v1/users/me", headers=auth(response.json)).json
    assert me["email"] == "oidc.user@example.com" and me["isVerified"] is True and me["firstName"] == "Olive"
    assert claims["sub"] == me["id"] and claims["role"] == "customer"
    assert rows(db, "SELECT issuer, subject FROM oauth_identities") == [(provider.issuer, "user-1")]
    assert provider.token_requests[-1]["code_verifier"]  # PKCE verifier sent with the code
    # The second time, the same account is found through the link.
    again = client.get(callback_path(at_provider(start(client)[0])))
    assert jwt.decode(again.json["accessToken"], options={"verify_signature": False})["sub"] == me["id"]
    assert rows(db, "SELECT count(*) FROM users") == [(1,)]
    assert [e.kind for e in events(db) if e.kind != "login"] == ["user_created", "oidc_linked"]


def test_an_existing_account_is_linked_by_verified_email(oidc_app, provider, db):
    with db.session() as session:
        user = make_user(session, "customer", email="oidc.user@example.com")
    client = oidc_app.test_client()
    response = client.get(callback_path(at_provider(start(client)[0])))
    assert jwt.decode(response.json["accessToken"], options={"verify_signature": False})["sub"] == str(user.id)


def test_an_unverified_provider_email_does_not_take_over_an_account(oidc_app, provider, db):
    with db.session() as session:
        make_user(session, "admin", email="oidc.user@example.com")
    provider.claims = {**provider.claims, "email_verified": False}
    client = oidc_app.test_client()
    assert client.get(callback_path(at_provider(start(client)[0]))).status_code == 401
    assert rows(db, "SELECT count(*) FROM oauth_identities") == [(0,)]


def test_state_is_single_use_and_must_be_ours(oidc_app):
    client = oidc_app.test_client()
    path = callback_path(at_provider(start(client)[0]))
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 400  # replayed
    forged = path.split("state=")[0] + "state=forged"
    assert client.get(forged).status_code == 400


def test_an_id_token_signed_with_another_key_is_refused(oidc_app, provider):
    provider.signing_key = new_key()
    client = oidc_app.test_client()
    response = client.get(callback_path(at_provider(start(client)[0])))
    assert response.status_code == 401 and "ID token" in response.json["message"]


def test_a_wrong_nonce_is_refused(oidc_app, provider):
    provider.nonce_override = "not-the-nonce"
    client = oidc_app.test_client()
    response = client.get(callback_path(at_provider(start(client)[0])))
    assert response.status_code == 401 and "nonce" in response.json["message"]


def test_an_enrolled_user_still_needs_the_second_step(oidc_app, provider, db):
    with db.session() as session:
        user = make_user(session, "customer", email="oidc.user@example.com")
        session.expunge(user)
    client = oidc_app.test_client()
    enrol_totp(client, auth(login(client, user.email).json))
    response = client.get(callback_path(at_provider(start(client)[0])))
    assert response.json["mfaRequired"] is True and "accessToken" not in response.json


def test_unknown_providers_and_oidc_off_are_404(oidc_app, client):
    assert oidc_app.test_client().get("/api/v1/auth/oauth/other/authorize").status_code == 404
    assert client.get("/api/v1/auth/oauth/oidc/authorize").status_code == 404
