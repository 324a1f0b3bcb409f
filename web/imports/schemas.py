"""Bodies of /imports and /exports."""

from __future__ import annotations

from marshmallow import fields, validate

from imports.exports import FORMATS as EXPORT_FORMATS
from imports.exports import KINDS
from imports.feed import FORMATS
from web.schemas import CamelSchema, Trimmed, Int, UtcDateTime, QueryInt


class SourceSchema(CamelSchema):
    source = Trimmed(required=True, validate=validate.Length(min=1, max=1000))
    format = fields.String(validate=validate.OneOf(FORMATS))


class UploadFormSchema(CamelSchema):
    format = fields.String(validate=validate.OneOf(FORMATS))


class StartedSchema(CamelSchema):
    id = fields.UUID()
    status = fields.String()


class RowErrorSchema(CamelSchema):
    row = Int()
    column = fields.String()
    value = fields.String()
    message = fields.String()


class ImportJobSchema(CamelSchema):
    id = fields.UUID()
    status = fields.String()
    format = fields.String(allow_none=True)
    filename = fields.String()
    source = fields.String(attribute="inbox")
    policy = fields.String()
    message = fields.String()
    rows_total = Int(allow_none=True)
    rows_imported = Int()
    rows_failed = Int()
    progress = fields.Float()
    errors = fields.List(fields.Nested(RowErrorSchema))
    error_report_url = fields.String(allow_none=True)
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)
    duration_seconds = fields.Float(allow_none=True)


class ImportListArgs(CamelSchema):
    limit = QueryInt(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String()


class ImportPageSchema(CamelSchema):
    items = fields.List(fields.Nested(ImportJobSchema))
    next_cursor = fields.String(allow_none=True)


class ExportRequestSchema(CamelSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    format = fields.String(required=True, validate=validate.OneOf(EXPORT_FORMATS))
    destination = Trimmed(validate=validate.Length(max=1000))


class ExportJobSchema(CamelSchema):
    id = fields.UUID()
    kind = fields.String()
    format = fields.String()
    destination = fields.String()
    status = fields.String()
    location = fields.String(allow_none=True)
    rows = Int()
    message = fields.String()
    created_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
