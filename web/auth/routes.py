"""/auth: registration, verification, sign-in with lockout and TOTP, refresh rotation, logout."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from models.users import auth
from models.users.actions import register_user, verify_email
from web.auth.guard import claims_or_none, current_actor, requires
from web.auth.schemas import (
    LoginSchema,
    MfaLoginSchema,
    RecoveryCodesSchema,
    RefreshSchema,
    RegisterSchema,
    TokenSchema,
    TotpConfirmSchema,
    TotpEnrolmentSchema,
    UserSchema,
    VerifyEmailSchema,
)
from web.auth.tokens import policy, token_pair
from web.extensions import db, runtime
from web.limits import auth_limit

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and sign-in")


@blp.route("/register")
class Register(MethodView):
    decorators = [auth_limit()]

    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="An account with this email exists")
    def post(self, data):
        """Create a customer account; a verification email is queued."""
        with db().session() as session:
            return register_user(session, **data)


@blp.route("/verify-email")
class VerifyEmail(MethodView):
    decorators = [auth_limit()]

    @blp.arguments(VerifyEmailSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(400, description="The token is forged, expired or already used")
    def post(self, data):
        """Mark the account verified with the token from the email."""
        with db().session() as session:
            return verify_email(session, data["token"])


def _signed_in(signin: auth.SignIn) -> dict:
    if signin.mfa_token:
        return {"mfa_required": True, "mfa_token": signin.mfa_token}
    return token_pair(signin, runtime().settings)


@blp.route("/login")
class Login(MethodView):
    decorators = [auth_limit()]

    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Wrong email or password, or the account is locked after repeated failures")
    @blp.alt_response(429, description="Too many attempts from this address")
    def post(self, data):
        """Sign in with email and password: a token pair, or `mfaRequired` and an `mfaToken` for the second step."""
        rt = runtime()
        with db().session() as session:
            signin = auth.login(session, rt.redis, policy(rt.settings), data["email"], data["password"],
                                request.remote_addr)
            return _signed_in(signin)


@blp.route("/login/mfa")
class LoginMfa(MethodView):
    decorators = [auth_limit()]

    @blp.arguments(MfaLoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Wrong, reused or expired code or mfaToken")
    def post(self, data):
        """Finish a sign-in with a TOTP or recovery code; the access token records MFA."""
        rt = runtime()
        with db().session() as session:
            signin = auth.complete_mfa(session, rt.redis, policy(rt.settings), data["mfa_token"], data["code"],
                                       request.remote_addr)
            return _signed_in(signin)


@blp.route("/refresh")
class Refresh(MethodView):
    decorators = [auth_limit()]

    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Unknown, expired or already used refresh token (reuse ends the session)")
    def post(self, data):
        """Trade a refresh token for a new pair; the old refresh token stops working."""
        rt = runtime()
        with db().session() as session:
            signin = auth.refresh(session, rt.redis, policy(rt.settings), data["refresh_token"],
                                  request.remote_addr)
            return token_pair(signin, rt.settings)


@blp.route("/logout")
class Logout(MethodView):
    @requires("users:view_own")
    @blp.response(204)
    def post(self):
        """End this session: its refresh tokens and this access token stop working."""
        rt = runtime()
        with db().session() as session:
            auth.logout(session, rt.redis, policy(rt.settings), current_actor(), claims_or_none())


@blp.route("/mfa/totp")
class TotpEnrol(MethodView):
    decorators = [auth_limit()]

    @requires("users:update_own")
    @blp.response(200, TotpEnrolmentSchema)
    @blp.alt_response(409, description="TOTP is already enrolled")
    def post(self):
        """Start TOTP enrolment: a new secret and its `otpauth://` URI for an authenticator app."""
        rt = runtime()
        with db().session() as session:
            secret, uri = auth.begin_totp(session, policy(rt.settings), current_actor())
            return {"secret": secret, "otpauth_uri": uri}


@blp.route("/mfa/totp/confirm")
class TotpConfirm(MethodView):
    decorators = [auth_limit()]

    @requires("users:update_own")
    @blp.arguments(TotpConfirmSchema)
    @blp.response(200, RecoveryCodesSchema)
    @blp.alt_response(400, description="Wrong or reused code")
    def post(self, data):
        """Confirm enrolment with a first code; returns 10 single-use recovery codes, shown once."""
        with db().session() as session:
            return {"recovery_codes": auth.confirm_totp(session, current_actor(), data["code"])}
