"""Request and response bodies of /auth."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate

from web.schemas import CamelSchema, Trimmed, TrimmedEmail

# The spec's CreateUserDto rule, verbatim.
PASSWORD_RULE = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[@$!%*?&])[A-Za-z\d@$!%*?&]{8,}$")
PASSWORD_MAX = 128  # argon2 takes any length; this keeps a request from costing much
PASSWORD_HINTS = [
    (re.compile(r"[a-z]"), "one lowercase letter"),
    (re.compile(r"[A-Z]"), "one uppercase letter"),
    (re.compile(r"\d"), "one number"),
    (re.compile(r"[@$!%*?&]"), "one special character (@$!%*?&)"),
]


def check_password(value: str) -> None:
    """The spec's rule, with a message that says which part is missing."""
    if len(value) > PASSWORD_MAX:
        raise ValidationError(f"Password must be at most {PASSWORD_MAX} characters.")
    if PASSWORD_RULE.match(value):
        return
    problems = []
    if len(value) < 8:
        problems.append("Password must be at least 8 characters long.")
    missing = [hint for pattern, hint in PASSWORD_HINTS if not pattern.search(value)]
    if missing:
        problems.append("Password must contain at least " + ", ".join(missing) + ".")
    if re.search(r"[^A-Za-z\d@$!%*?&]", value):
        problems.append("Password may contain only letters, digits and @$!%*?&.")
    raise ValidationError(problems)


class RegisterSchema(CamelSchema):
    email = TrimmedEmail(required=True, validate=validate.Length(max=255))
    password = fields.String(required=True, load_only=True, validate=check_password)
    first_name = Trimmed(required=True, validate=validate.Length(min=1, max=100))
    last_name = Trimmed(required=True, validate=validate.Length(min=1, max=100))


class VerifyEmailSchema(CamelSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class UserSchema(CamelSchema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    is_verified = fields.Boolean(dump_only=True)


class LoginSchema(CamelSchema):
    email = Trimmed(required=True, validate=validate.Length(min=1, max=255))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=PASSWORD_MAX))


class MfaLoginSchema(CamelSchema):
    mfa_token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))
    code = Trimmed(required=True, load_only=True, validate=validate.Length(min=6, max=32))


class RefreshSchema(CamelSchema):
    refresh_token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=2000))


class TokenSchema(CamelSchema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "seconds the access token lives"})
    mfa_required = fields.Boolean()
    mfa_token = fields.String(metadata={"description": "send it with a code to /auth/login/mfa"})
    mfa_enrolment_required = fields.Boolean(metadata={"description": "admins must enrol TOTP"})


class TotpEnrolmentSchema(CamelSchema):
    secret = fields.String()
    otpauth_uri = fields.String()


class TotpConfirmSchema(CamelSchema):
    code = Trimmed(required=True, load_only=True, validate=validate.Length(equal=6))


class RecoveryCodesSchema(CamelSchema):
    recovery_codes = fields.List(fields.String())
