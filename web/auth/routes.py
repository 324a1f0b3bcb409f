"""POST /auth/register and /auth/verify-email."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from models.users.actions import register_user, verify_email
from web.auth.schemas import RegisterSchema, UserSchema, VerifyEmailSchema
from web.extensions import db

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and sign-in")


@blp.route("/register")
class Register(MethodView):
    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="An account with this email exists")
    def post(self, data):
        """Create a customer account; a verification email is queued."""
        with db().session() as session:
            return register_user(session, **data)


@blp.route("/verify-email")
class VerifyEmail(MethodView):
    @blp.arguments(VerifyEmailSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(400, description="The token is forged, expired or already used")
    def post(self, data):
        """Mark the account verified with the token from the email."""
        with db().session() as session:
            return verify_email(session, data["token"])
