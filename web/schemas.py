"""Fields shared by the resources' schemas."""

from __future__ import annotations

import re
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate


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


# Money on the wire: an exact decimal string, declared so in the OpenAPI document (API.md).
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
MONEY = {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN, "example": "12.50"}
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
INT_TEXT = re.compile(r"-?[0-9]{1,10}")


class Money(fields.Decimal):
    """A decimal amount sent as a string such as "12.50"."""

    def __init__(self, **kwargs):
        super().__init__(as_string=True, **kwargs)
        self.metadata = {**MONEY, **self.metadata}


class UtcDateTime(fields.DateTime):
    """RFC 3339 in UTC with `Z`; stored naive date-times are UTC already."""

    def _serialize(self, value, attr, obj, **kwargs):
        return utc_text(value)


def utc_text(value):
    """A date-time as UtcDateTime sends it (None stays None)."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


class Int(fields.Integer):
    """A strict, bounded integer: a JSON integer (not 1.5, not "2", not true)."""

    def _validated(self, value):
        if isinstance(value, bool) or not self._acceptable(value):
            raise self.make_error("invalid", input=value)
        number = int(value)
        if not INT_MIN <= number <= INT_MAX:
            raise ValidationError(f"Must be between {INT_MIN} and {INT_MAX}.")
        return number

    def _acceptable(self, value) -> bool:
        return isinstance(value, int)


class QueryInt(Int):
    """The same, read from a query string (plain digits only, not "1e3", not "1.0") or given as an int."""

    def _acceptable(self, value) -> bool:
        return isinstance(value, int) or isinstance(value, str) and INT_TEXT.fullmatch(value) is not None
