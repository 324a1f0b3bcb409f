"""Bodies of the administrators' endpoints."""

from __future__ import annotations

from marshmallow import fields, validate

from models.users.permissions import KEY_SCOPES
from web.schemas import CamelSchema, Trimmed, Int, UtcDateTime, QueryInt

SETTING_KEY = validate.Regexp(r"^[a-z][a-z0-9_.]{0,63}$", error="lowercase letters, digits, _ and . (max 64)")


class SettingsSchema(CamelSchema):
    settings = fields.Dict(keys=fields.String(validate=SETTING_KEY), values=fields.Raw(allow_none=True),
                           required=True, metadata={"example": {"store.name": "Shop", "orders.max_items": 50}})


class SecurityEventSchema(CamelSchema):
    id = Int()
    created_at = UtcDateTime()
    kind = fields.String()
    actor_user_id = fields.UUID(allow_none=True)
    actor_api_key_id = fields.UUID(allow_none=True)
    subject_user_id = fields.UUID(allow_none=True)
    ip = fields.String(allow_none=True)
    details = fields.Dict()


class SecurityEventListArgs(CamelSchema):
    limit = QueryInt(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = QueryInt(load_default=None, validate=validate.Range(min=1))
    kind = fields.String(load_default=None, validate=validate.Length(max=64))
    user_id = fields.UUID(load_default=None)


class SecurityEventPageSchema(CamelSchema):
    items = fields.List(fields.Nested(SecurityEventSchema))
    next_cursor = fields.String(allow_none=True)


class ApiKeySchema(CamelSchema):
    id = fields.UUID(dump_only=True)
    name = Trimmed(required=True, validate=validate.Length(min=1, max=100))
    prefix = fields.String(dump_only=True)
    scopes = fields.List(fields.String(validate=validate.OneOf(KEY_SCOPES, error="Not a scope an API key can hold.")),
                         required=True, validate=validate.Length(min=1))
    created_by = fields.UUID(dump_only=True, allow_none=True)
    created_at = UtcDateTime(dump_only=True)
    last_used_at = UtcDateTime(dump_only=True, allow_none=True)  # as of the last usage flush
    use_count = fields.Integer(dump_only=True)  # likewise
    revoked_at = UtcDateTime(dump_only=True, allow_none=True)


class NewApiKeySchema(ApiKeySchema):
    key = fields.String(dump_only=True, metadata={"description": "the key itself, shown this once"})


class ApiKeyListSchema(CamelSchema):
    items = fields.List(fields.Nested(ApiKeySchema))
