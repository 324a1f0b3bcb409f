"""Fields shared by the resources' schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class TrimMixin:
    """Removes surrounding whitespace before the field is validated."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class Trimmed(TrimMixin, fields.String):
    pass


class TrimmedEmail(TrimMixin, fields.Email):
    pass


class CamelSchema(Schema):
    """Python names inside, camelCase names on the wire (API.md)."""

    def on_bind_field(self, field_name, field_obj):
        head, *rest = field_name.split("_")
        field_obj.data_key = field_obj.data_key or head + "".join(part.title() for part in rest)


class PostalAddressSchema(CamelSchema):
    """API.md's Address: a user's saved address and an order's snapshot alike."""

    first_name = Trimmed(required=True, validate=validate.Length(min=1, max=100))
    last_name = Trimmed(required=True, validate=validate.Length(min=1, max=100))
    line1 = Trimmed(required=True, validate=validate.Length(min=1, max=255))
    line2 = Trimmed(allow_none=True, validate=validate.Length(max=255))
    city = Trimmed(required=True, validate=validate.Length(min=1, max=100))
    region = Trimmed(allow_none=True, validate=validate.Length(max=100))
    postal_code = Trimmed(required=True, validate=validate.Length(min=1, max=20))
    country = Trimmed(required=True, validate=validate.Regexp(r"^[A-Z]{2}$", error="ISO 3166-1 alpha-2 code"))
    phone = Trimmed(allow_none=True, validate=validate.Regexp(r"^\+?[0-9 ()\-]{4,32}$", error="a phone number"))
