"""Bodies of /users."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from models.users.tables import Role
from web.auth.schemas import check_password
from web.schemas import CamelSchema, PostalAddressSchema, Trimmed, UtcDateTime, QueryInt

NAME = validate.Length(min=1, max=100)


class ProfileSchema(CamelSchema):
    id = fields.UUID(dump_only=True)
    email = fields.String(dump_only=True)
    # Empty for an erased account (docs/retention.md), so no minimum length is promised.
    first_name = fields.String(dump_only=True, metadata={"maxLength": 100})
    last_name = fields.String(dump_only=True, metadata={"maxLength": 100})
    role = fields.String(dump_only=True)
    is_verified = fields.Boolean(dump_only=True)
    created_at = UtcDateTime(dump_only=True)


class ProfileUpdateSchema(CamelSchema):
    first_name = Trimmed(validate=NAME)
    last_name = Trimmed(validate=NAME)
    password = fields.String(load_only=True, validate=check_password)
    current_password = fields.String(load_only=True, validate=validate.Length(max=128))

    @validates_schema
    def password_needs_current(self, data, **kwargs):
        if "password" in data and not data.get("current_password"):
            raise ValidationError("required to change the password", "currentPassword")


class AdminUserUpdateSchema(CamelSchema):
    first_name = Trimmed(validate=NAME)
    last_name = Trimmed(validate=NAME)
    is_verified = fields.Boolean()
    role = fields.String(validate=validate.OneOf([role.value for role in Role if role != Role.GUEST]))


class UserListArgs(CamelSchema):
    limit = QueryInt(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None)
    role = fields.String(load_default=None, validate=validate.OneOf([role.value for role in Role]))


class UserPageSchema(CamelSchema):
    items = fields.List(fields.Nested(ProfileSchema))
    next_cursor = fields.String(allow_none=True)


class LockoutLiftedSchema(CamelSchema):
    was_locked = fields.Boolean(required=True, metadata={"description": "whether a lockout or failures were in force"})


class PermissionsSchema(CamelSchema):
    role = fields.String()
    permissions = fields.List(fields.String(), metadata={"example": ["products:view", "orders:view_own"]})


class AddressSchema(PostalAddressSchema):
    id = fields.UUID(dump_only=True)
    is_default = fields.Boolean()


class AddressListSchema(CamelSchema):
    items = fields.List(fields.Nested(AddressSchema))


class AddressPatchSchema(AddressSchema):
    """AddressSchema, every field optional (use it with partial=True)."""
