"""Our access tokens: HS256 JWTs of ACCESS_TOKEN_TTL carrying user id, role, MFA and the session id."""

from __future__ import annotations

import uuid

from flask_jwt_extended import create_access_token

from models.users.auth import AuthPolicy, SignIn
from settings import Settings


def access_token(user_id: uuid.UUID, role: str, *, mfa: bool, session_id: uuid.UUID) -> str:
    """A signed access token (`jti`, `iat`, `exp` added by flask-jwt-extended); needs an app context."""
    return create_access_token(identity=str(user_id),
                               additional_claims={"role": role, "mfa": mfa, "sid": str(session_id)})


def token_pair(signin: SignIn, settings: Settings) -> dict:
    """The body of a successful sign-in or refresh."""
    auth = signin.session
    body = {"access_token": access_token(signin.user.id, signin.user.role, mfa=auth.mfa, session_id=auth.id),
            "refresh_token": signin.refresh_token, "token_type": "Bearer",
            "expires_in": settings.ACCESS_TOKEN_TTL}
    if signin.mfa_enrolment_required:
        body["mfa_enrolment_required"] = True
    return body


def policy(settings: Settings) -> AuthPolicy:
    return AuthPolicy.from_settings(settings)
