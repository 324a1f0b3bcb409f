"""Request and response bodies of /auth."""

from __future__ import annotations

import unicodedata

from marshmallow import ValidationError, fields, validate

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from web.schemas import CamelSchema, Int, Trimmed, TrimmedEmail

PASSWORD_MIN = 8
PASSWORD_MAX = 128  # argon2 takes any length; this keeps a request from costing much
# The spec's four character classes, read for all of Unicode: any character that is
# neither a letter nor a digit (a space, '#', '€', '・') counts as special.
PASSWORD_CLASSES = [
    (str.islower, "one lowercase letter"),
    (str.isupper, "one uppercase letter"),
    (str.isdecimal, "one number"),
    (lambda char: not char.isalnum(), "one special character (anything not a letter or a digit)"),
]
# zxcvbn's list of the 30,000 most common passwords (from leaked password sets).
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])


def check_password(value: str) -> None:
    """The spec's classes, any printable Unicode, and not one of the most common passwords (docs/identity.md)."""
    if len(value) > PASSWORD_MAX:
        raise ValidationError(f"Password must be at most {PASSWORD_MAX} characters.")
    problems = []
    if len(value) < PASSWORD_MIN:
        problems.append(f"Password must be at least {PASSWORD_MIN} characters long (12 or more is better).")
    missing = [hint for test, hint in PASSWORD_CLASSES if not any(test(char) for char in value)]
    if missing:
        problems.append("Password must contain at least " + ", ".join(missing) + ".")
    if any(unicodedata.category(char) in ("Cc", "Cs", "Cn") for char in value):
        problems.append("Password must not contain control characters.")
    if value.lower() in COMMON_PASSWORDS:
        problems.append("This password is one of the most common ones; choose another.")
    if problems:
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
    expires_in = Int(metadata={"description": "seconds the access token lives"})
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
