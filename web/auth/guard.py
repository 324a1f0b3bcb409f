"""Authentication and the per-endpoint permission check.

`@requires("products:create")` on a view resolves the caller (a bearer
access token, an `X-API-Key`, else a guest), refuses with 401/403 in
API.md's error shape, and documents the security scheme in OpenAPI. The
view reads the caller with `current_actor()` and passes it to the domain
action, which checks again (`models.users.permissions.authorize`).

An access token is refused once logged out, once its session has ended, or
when its user's sessions were cut off by a password or role change
(`models.users.auth.token_revoked`, one Redis round trip).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import wraps

from flask import Flask, g, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint

from models.errors import Forbidden, Unauthorized
from models.users.api_keys import use_api_key
from models.users.auth import token_revoked
from models.users.permissions import GUEST, NEEDS_PERSON, PERMISSIONS, Actor, needs_mfa
from models.users.tables import Role
from settings import Settings
from web.errors import error_body
from web.extensions import db, runtime

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
    jwt.init_app(app)
    jwt.token_in_blocklist_loader(_revoked)
    for loader in (jwt.invalid_token_loader, jwt.unauthorized_loader, jwt.expired_token_loader,
                   jwt.revoked_token_loader, jwt.needs_fresh_token_loader):
        loader(_unauthorized)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})


def _unauthorized(*args):
    return error_body(401, "missing, invalid or expired credentials"), 401, {"WWW-Authenticate": "Bearer"}


REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "role", "sid")


def _revoked(_header: dict, claims: dict) -> bool:
    """Refused unless it is one of our access tokens, whole and live (even when correctly signed)."""
    return claims.get("type") != "access" or not _well_formed(claims) or token_revoked(runtime().redis, claims)


def _well_formed(claims: dict) -> bool:
    if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS):
        return False
    try:
        uuid.UUID(str(claims["sub"]))
        Role(claims["role"])
    except ValueError:
        return False
    return all(isinstance(claims[name], int) and not isinstance(claims[name], bool) for name in ("exp", "iat"))


def current_actor() -> Actor:
    """The caller of this request, resolved once."""
    if "actor" not in g:
        g.actor = _resolve()
    return g.actor


def _resolve() -> Actor:
    if request.headers.get("X-API-Key"):
        return _api_key_actor(request.headers["X-API-Key"])
    verify_jwt_in_request(optional=True)
    claims = get_jwt()
    if not claims:
        return Actor(ip=request.remote_addr)
    return Actor(role=Role(claims["role"]), user_id=uuid.UUID(claims["sub"]), mfa=bool(claims.get("mfa")),
                 ip=request.remote_addr)


def _api_key_actor(key: str) -> Actor:
    """The key's actor; its use is recorded (and its last-used time set) in its own transaction."""
    with db().session() as session:
        row = use_api_key(session, key, request.remote_addr, f"{request.method} {request.path}")
        return Actor(role=Role.GUEST, api_key_id=row.id, scopes=frozenset(row.scopes), ip=request.remote_addr)


def claims_or_none() -> dict | None:
    """The verified access token's claims, when the caller sent one (not an API key)."""
    if current_actor().api_key_id is not None:
        return None
    return get_jwt() or None


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
