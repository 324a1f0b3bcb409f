"""A small OpenID provider on loopback: discovery, an auto-approving /authorize, /token with PKCE, JWKS.

ID tokens are RS256, signed with a key made at start. `signing_key` can be
swapped for another to make the provider sign with a key its JWKS does not
publish; `claims` are the user the next sign-in returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


from tests.twins.loopback import LoopbackServer

def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcTwin(LoopbackServer):
    def __init__(self, client_id: str = "shop-client", client_secret: str = "shop-secret"):  # noqa: S107
        self.client_id, self.client_secret = client_id, client_secret
        self.key = new_key()
        self.signing_key = self.key
        self.claims = {"sub": "user-1", "email": "oidc.user@example.com", "email_verified": True,
                       "given_name": "Olive", "family_name": "Idsen"}
        self.nonce_override: str | None = None
        self.codes: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), self._handler()))
        self.issuer = self.base_url

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": self.nonce_override or nonce, **self.claims}
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": "k1"})

    def _handler(self):
        twin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, {"issuer": twin.issuer, "authorization_endpoint": twin.issuer + "/authorize",
                                            "token_endpoint": twin.issuer + "/token",
                                            "jwks_uri": twin.issuer + "/jwks",
                                            "code_challenge_methods_supported": ["S256"]})
                if url.path == "/jwks":
                    return self._json(200, twin.jwks())
                if url.path == "/authorize":
                    query = dict(urllib.parse.parse_qsl(url.query))
                    code = secrets.token_urlsafe(16)
                    twin.codes[code] = query
                    target = query["redirect_uri"] + "?" + urllib.parse.urlencode(
                        {"code": code, "state": query["state"]})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                    return None
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                twin.token_requests.append(form)
                basic = base64.b64encode(f"{twin.client_id}:{twin.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {basic}":
                    return self._json(401, {"error": "invalid_client"})
                grant = twin.codes.pop(form.get("code", ""), None)
                challenge = base64.urlsafe_b64encode(
                    hashlib.sha256(form.get("code_verifier", "").encode()).digest()).rstrip(b"=").decode()
                if (grant is None or grant["code_challenge"] != challenge
                        or grant["redirect_uri"] != form.get("redirect_uri")):
                    return self._json(400, {"error": "invalid_grant"})
                return self._json(200, {"access_token": "provider-access", "token_type": "Bearer",
                                        "id_token": twin.id_token(grant["nonce"])})

        return Handler
