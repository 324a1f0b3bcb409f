"""Authentication and the per-endpoint permission check.

`@requires("products:create")` on a view resolves the caller (a bearer
access token, an `X-API-Key`, else a guest), refuses with 401/403 in
API.md's error shape, and documents the security scheme in OpenAPI. The
view reads the caller with `current_actor()` and passes it to the domain
action, which checks again (`models.users.permissions.authorize`).

The token is decoded once per request (one PyJWT call: signature, `exp`,
`iat`; a token seen before in this process is taken from a small cache of
verified tokens, its expiry checked again), its claims kept on `g`. It is refused once logged out, once its
session has ended, or when its user's sessions were cut off by a password
or role change (`models.users.auth.revoked_by`). Those three Redis keys are
read in the rate limiter's own round trip (`web.limits.check_along`); when
no hit read them (a path outside the limits, or Redis failing, which the
limiter swallows) the guard reads them itself, so Redis being away still
fails closed with 503. An API key is checked through its Redis cache
(`models.users.key_access`), which also counts its use.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from functools import lru_cache, wraps

import jwt as pyjwt
from flask import Flask, g, request
from flask_jwt_extended import JWTManager
from flask_smorest import Blueprint

from models.errors import Forbidden, Unauthorized
from models.users.auth import revocation_keys, revoked_by
from models.users.key_access import KeyAccess
from models.users.permissions import GUEST, NEEDS_PERSON, PERMISSIONS, Actor, needs_mfa
from models.users.tables import Role
from settings import Settings
from web.errors import error_body
from web.extensions import db, runtime
from web.limits import check_along, revocation_answer

jwt = JWTManager()
ALGORITHM = "HS256"
SECURITY = [{"bearerAuth": []}, {"apiKey": []}]


def init_app(app: Flask, api, settings: Settings) -> None:
    """Configure flask-jwt-extended (algorithm pinned, header only) and the OpenAPI schemes."""
    app.config.update(
        JWT_SECRET_KEY=settings.SECRET_KEY,
        JWT_ALGORITHM=ALGORITHM,
        JWT_DECODE_ALGORITHMS=[ALGORITHM],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.ACCESS_TOKEN_TTL),
    )
    jwt.init_app(app)  # it mints the tokens (web.auth.tokens); this module verifies them
    app.register_error_handler(BadToken, _unauthorized)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})


class BadToken(Unauthorized):
    """A bearer token that is malformed, badly signed, expired, not one of our access tokens, or revoked."""


def _unauthorized(*args):
    return error_body(401, "missing, invalid or expired credentials"), 401, {"WWW-Authenticate": "Bearer"}


REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "role", "sid")
TOKENS_CACHED = 4096  # verified tokens kept per process (about 1 KB each)
_DECODE_OPTIONS = {"require": ["exp", "iat"], "verify_aud": False}


def _bearer_token() -> str | None:
    """The token of `Authorization: Bearer <token>` (read as flask-jwt-extended did); None if there is none."""
    return bearer_token(request.headers.get("Authorization", ""))


def bearer_token(authorization: str) -> str | None:
    """The token of an Authorization header's one `Bearer <token>`; None without one; BadToken if malformed."""
    header = authorization.strip().strip(",")
    bearers = [part for part in re.split(r",\s*", header) if part and part.split()[0] == "Bearer"]
    if len(bearers) != 1:
        return None  # no bearer credentials: a guest
    parts = bearers[0].split()
    if len(parts) != 2:
        raise BadToken("bad Authorization header")
    return parts[1]


def _decode(token: str) -> dict:
    """The claims of one of our live access tokens, whole (even when correctly signed); else BadToken."""
    return verified_claims(runtime().settings.SECRET_KEY, token)


def verified_claims(secret: str, token: str) -> dict:
    """The claims of a live access token signed with `secret` (a copy); BadToken otherwise."""
    claims = _verified(secret, token)
    if claims["exp"] <= time.time():  # a cached verification says nothing about expiry
        raise BadToken("expired token")
    return dict(claims)


@lru_cache(maxsize=TOKENS_CACHED)
def _verified(secret: str, token: str) -> dict:
    """Verify signature and claims once per token and process: a client sends the same token many times.

    Keyed by the whole token, so a token that differs by one byte is verified afresh; failures are not kept.
    """
    try:
        claims = pyjwt.decode(token, secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except pyjwt.InvalidTokenError as exc:
        raise BadToken("invalid or expired token") from exc
    if claims.setdefault("type", "access") != "access" or not _well_formed(claims):
        raise BadToken("not an access token")
    return claims


def _well_formed(claims: dict) -> bool:
    if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS):
        return False
    try:
        uuid.UUID(str(claims["sub"]))
        Role(claims["role"])
    except ValueError:
        return False
    return all(isinstance(claims[name], int) and not isinstance(claims[name], bool) for name in ("exp", "iat"))


def key_access() -> KeyAccess:
    """API keys' Redis cache, revocation marks and usage counters."""
    return KeyAccess(runtime().redis, runtime().settings.API_KEY_CACHE_TTL)


def current_actor() -> Actor:
    """The caller of this request, resolved once, its token checked against revocation."""
    if "actor" not in g:
        actor = caller()
        claims = g.get("claims")
        if claims is not None:
            values = revocation_answer()
            if values is None:  # no rate-limit hit read them: one round trip of our own (errors mean 503)
                values = runtime().redis.mget(*revocation_keys(claims))
            if revoked_by(values, claims):
                raise BadToken("token revoked")
        g.actor = actor
    return g.actor


def caller() -> Actor:
    """Who the credentials say the caller is, before the revocation check: only the rate limiter's key."""
    if "caller" not in g:
        g.caller = _identify()
    return g.caller


def _identify() -> Actor:
    if request.headers.get("X-API-Key"):
        # Our own id for this request (not X-Request-ID, which the client chooses): counted once.
        use_id = g.setdefault("key_use_id", uuid.uuid4().hex)
        return key_access().verify(db().session, request.headers["X-API-Key"], request.remote_addr, use_id)
    token = _bearer_token() if request.method != "OPTIONS" else None
    if token is None:
        return Actor(ip=request.remote_addr)
    claims = _decode(token)
    g.claims = claims
    check_along(revocation_keys(claims))
    return token_actor(claims, request.remote_addr)


def token_actor(claims: dict, ip: str | None) -> Actor:
    """The signed-in caller a verified access token's claims name."""
    return Actor(role=Role(claims["role"]), user_id=uuid.UUID(claims["sub"]), mfa=bool(claims.get("mfa")), ip=ip)


def claims_or_none() -> dict | None:
    """The verified access token's claims, when the caller sent one (not an API key)."""
    current_actor()
    return g.get("claims")


def check(actor: Actor, *permissions: str) -> list[str]:
    """The `permissions` the caller holds; 401 for a guest holding none, 403 otherwise or without MFA."""
    held = [name for name in permissions if actor.can(name)]
    if not held:
        if actor == GUEST or actor.user_id is None and actor.api_key_id is None:
            raise Unauthorized("sign in to do this")
        if actor.api_key_id is not None and set(permissions) & NEEDS_PERSON:
            raise Forbidden("an API key acts for no person; this needs a signed-in user",
                            {"scopes": sorted(set(permissions) & NEEDS_PERSON)})
        raise Forbidden(f"not allowed: {' or '.join(permissions)}")
    if not any(actor.mfa_satisfied(name) for name in held):
        raise Forbidden("MFA is required for this administrative action", {"mfa": ["required"]})
    return held


def requires(*permissions: str):
    """Let the request through when the caller holds any of `permissions` (and MFA where needed)."""
    unknown = set(permissions) - PERMISSIONS.keys()
    if unknown:
        raise KeyError(f"unknown permissions {sorted(unknown)}")

    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            held = check(current_actor(), *permissions)
            if all(needs_mfa(name) for name in held):
                g.admin_action = held[0]  # web.auth.audit records it with the change
            return view(*args, **kwargs)

        guests_allowed = any(Role.GUEST in PERMISSIONS[name] for name in permissions)
        doc = {"security": [{}, *SECURITY] if guests_allowed else SECURITY}
        if not guests_allowed:
            doc["responses"] = {"401": {"description": "Not signed in"},
                                "403": {"description": "Not allowed, or MFA is required"}}
        return Blueprint.doc(**doc)(guarded)

    return decorator
