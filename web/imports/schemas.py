"""Bodies of /imports and /exports."""

from __future__ import annotations

from marshmallow import fields, validate

from imports.exports import FORMATS as EXPORT_FORMATS
from imports.exports import KINDS
from imports.feed import FORMATS
from web.schemas import CamelSchema, Trimmed


class SourceSchema(CamelSchema):
    source = Trimmed(required=True, validate=validate.Length(min=1, max=1000))
    format = fields.String(validate=validate.OneOf(FORMATS))


class UploadFormSchema(CamelSchema):
    format = fields.String(validate=validate.OneOf(FORMATS))


class StartedSchema(CamelSchema):
    id = fields.UUID()
    status = fields.String()


class RowErrorSchema(CamelSchema):
    row = fields.Integer()
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
    rows_total = fields.Integer(allow_none=True)
    rows_imported = fields.Integer()
    rows_failed = fields.Integer()
    progress = fields.Float()
    errors = fields.List(fields.Nested(RowErrorSchema))
    error_report_url = fields.String(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    duration_seconds = fields.Float(allow_none=True)


class ImportListArgs(CamelSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
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
    rows = fields.Integer()
    message = fields.String()
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
