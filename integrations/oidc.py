"""An OpenID Connect relying party: discovery, the authorization-code flow with PKCE, ID-token checks.

Works with any provider given by issuer URL, client id and secret. Only the
standard library and PyJWT (with its JWKS client) talk to the provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import jwt

from integrations.errors import PermanentError, TransientError

ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "PS256"]  # asymmetric only: the client secret never verifies a token


class OidcError(PermanentError):
    """The provider refused, or what it sent fails a check."""


@dataclass(frozen=True)
class Pkce:
    """A PKCE verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@dataclass
class OidcClient:
    issuer: str
    client_id: str
    client_secret: str
    timeout: float = 10.0
    _discovery: dict | None = field(default=None, repr=False)
    _jwks: jwt.PyJWKClient | None = field(default=None, repr=False)

    def discovery(self) -> dict:
        """The provider's metadata (fetched once); its issuer must be the configured one."""
        if self._discovery is None:
            document = self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if document.get("issuer") != self.issuer:
                raise OidcError("the discovery document names another issuer")
            self._discovery = document
        return self._discovery

    def authorization_url(self, redirect_uri: str, state: str, nonce: str, pkce: Pkce) -> str:
        """Where to send the browser to sign in at the provider."""
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                 "scope": "openid email profile", "state": state, "nonce": nonce,
                 "code_challenge": pkce.challenge, "code_challenge_method": "S256"}
        return self.discovery()["authorization_endpoint"] + "?" + urllib.parse.urlencode(query)

    def exchange(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> dict:
        """Trade the code for tokens; return the ID token's checked claims."""
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": redirect_uri, "code_verifier": verifier}).encode()
        basic = base64.b64encode(f"{urllib.parse.quote(self.client_id)}:"
                                 f"{urllib.parse.quote(self.client_secret)}".encode()).decode()
        answer = self._send_json(self.discovery()["token_endpoint"], body, {
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"})
        if "id_token" not in answer:
            raise OidcError("the provider sent no ID token")
        return self.verify_id_token(answer["id_token"], nonce)

    def verify_id_token(self, id_token: str, nonce: str) -> dict:
        """Signature (the provider's JWKS), issuer, audience, expiry and nonce."""
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(self.discovery()["jwks_uri"], timeout=int(self.timeout) or 1)
        try:
            key = self._jwks.get_signing_key_from_jwt(id_token)
            claims = jwt.decode(id_token, key.key, algorithms=ID_TOKEN_ALGORITHMS, audience=self.client_id,
                                issuer=self.issuer, options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token failed its checks: {exc}") from None
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token's nonce does not match")
        return claims

    def _get_json(self, url: str) -> dict:
        return self._send_json(url)

    def _send_json(self, url: str, body: bytes | None = None, headers: dict | None = None) -> dict:
        """GET (or POST `body`) and read a JSON answer; only http(s) URLs."""
        if not url.startswith(("https://", "http://")):
            raise OidcError("provider URLs must be http(s)")
        request = urllib.request.Request(url, data=body, headers={"Accept": "application/json",  # noqa: S310
                                                                  **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (checked above)
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise TransientError(f"OIDC provider answered {exc.code}") from None
            raise OidcError(f"the provider refused: {exc.code}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise TransientError(f"OIDC provider unreachable: {exc}") from None
