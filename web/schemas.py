"""Fields shared by the resources' schemas."""

from __future__ import annotations

from marshmallow import Schema, fields


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
