"""POST/GET /imports, the reject report as CSV, and POST/GET /exports."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, request, stream_with_context, url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError

from imports import exports, jobs
from imports.feed import FORMATS
from imports.inboxes import LocationError
from imports.reports import error_rows, report_csv
from models.imports.tables import ImportJob
from models import cursors
from web.auth.guard import current_actor, requires
from web.extensions import db, runtime
from web.imports.schemas import (ExportJobSchema, ExportRequestSchema, ImportJobSchema, ImportListArgs,
                                 ImportPageSchema, SourceSchema, StartedSchema, UploadFormSchema)

blp = Blueprint("imports", __name__, url_prefix="/api/v1", description="Catalog files in and out")
INLINE_ERRORS = 20


def _view(session, job: ImportJob) -> dict:
    """The job as API.md shows it: counts, progress, timings and the first errors inline."""
    done = job.rows_imported + job.rows_failed
    end = job.finished_at or datetime.now(UTC).replace(tzinfo=None)  # columns hold naive UTC
    return {
        **{name: getattr(job, name) for name in ("id", "status", "format", "filename", "inbox", "policy", "message",
                                                  "rows_total", "rows_imported", "rows_failed", "created_at",
                                                  "started_at", "finished_at")},
        "progress": round(min(1.0, done / job.rows_total), 4) if job.rows_total else (1.0 if job.finished_at else 0.0),
        "errors": [{"row": row, "column": column, "value": value, "message": message}
                   for row, column, value, message in error_rows(session, job.id, INLINE_ERRORS)],
        "error_report_url": url_for("imports.ImportErrors", job_id=job.id) if job.rows_failed or job.finished_at
        else None,
        "duration_seconds": (end - job.started_at).total_seconds() if job.started_at else None,
    }


def _load(schema, data) -> dict:
    try:
        return schema().load(data)
    except ValidationError as exc:
        abort(422, message="invalid request", errors={"json": exc.messages})


UPLOAD_BODY = {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "format": {"type": "string", "enum": list(FORMATS)}}}},
    "application/json": {"schema": {"type": "object", "required": ["source"], "properties": {
        "source": {"type": "string", "example": "s3://bucket/inbox/catalog.csv"},
        "format": {"type": "string", "enum": list(FORMATS)}}}},
}}


@blp.route("/imports")
class Imports(MethodView):
    @requires("imports:create")
    @blp.doc(requestBody=UPLOAD_BODY)
    @blp.response(202, StartedSchema)
    @blp.alt_response(422, description="No file or source, or an unknown format or inbox")
    def post(self):
        """Import a catalog file: a multipart upload (field `file`) or `{source}` naming a file in an inbox."""
        settings = runtime().settings
        if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = _load(UploadFormSchema, request.form.to_dict())
            upload = request.files.get("file")
            if upload is None:
                abort(422, message="invalid request", errors={"form": {"file": ["a file is required"]}})
            # stored first, with no transaction open; then the job is recorded
            job = jobs.start_upload(db(), settings, current_actor(), upload.filename, upload.stream,
                                    form.get("format"))
        else:
            body = _load(SourceSchema, request.get_json(silent=True) or {})
            with db().session() as session:
                job = jobs.start_from_source(session, settings, current_actor(), body["source"], body.get("format"))
        return {"id": job.id, "status": job.status or "queued"}

    @requires("imports:view")
    @blp.arguments(ImportListArgs, location="query")
    @blp.response(200, ImportPageSchema)
    def get(self, args):
        """Import jobs, newest first."""
        with db().session() as session:
            found = jobs.list_jobs(session, current_actor(), args["limit"] + 1, _decode(args.get("cursor")))
            page = found[:args["limit"]]
            cursor = _encode(page[-1]) if len(found) > args["limit"] else None
            return {"items": [_view(session, job) for job in page], "next_cursor": cursor}


def _encode(job) -> str:
    return cursors.newest_first("imports", job)


def _decode(cursor: str | None) -> tuple | None:
    return cursors.read_newest_first(cursor, "imports")


@blp.route("/imports/<uuid:job_id>")
class ImportJobView(MethodView):
    @requires("imports:view")
    @blp.response(200, ImportJobSchema)
    @blp.alt_response(404, description="No such import")
    def get(self, job_id):
        """An import's status, counts, progress, timings and first errors."""
        with db().session() as session:
            return _view(session, jobs.get_job(session, current_actor(), job_id))


@blp.route("/imports/<uuid:job_id>/errors")
class ImportErrors(MethodView):
    @requires("imports:view")
    @blp.response(200, description="The row-level reject report", content_type="text/csv")
    def get(self, job_id):
        """The whole reject report as CSV: row, column, value, message."""
        actor = current_actor()
        with db().session() as session:
            job = jobs.get_job(session, actor, job_id)
            message = job.message if job.status in ("failed", "duplicate") else ""

        def generate():
            with db().session() as session:
                yield from report_csv(error_rows(session, job_id), message)

        return Response(stream_with_context(generate()), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="import-{job_id}-errors.csv"'})


@blp.route("/exports")
class Exports(MethodView):
    @requires("exports:create")
    @blp.arguments(ExportRequestSchema)
    @blp.response(202, ExportJobSchema)
    @blp.alt_response(422, description="Unknown kind, format or destination")
    def post(self, data):
        """Export orders or products as CSV, JSON or XML to a configured destination."""
        try:
            destination = exports.allowed_destination(runtime().settings, data.get("destination"))
        except LocationError as exc:
            abort(422, message="invalid request", errors={"json": {"destination": [str(exc)]}})
        with db().session() as session:
            return exports.create(session, current_actor(), data["kind"], data["format"], destination)


@blp.route("/exports/<uuid:export_id>")
class ExportView(MethodView):
    @requires("exports:view")
    @blp.response(200, ExportJobSchema)
    @blp.alt_response(404, description="No such export")
    def get(self, export_id):
        """An export's status and where its file went."""
        with db().session() as session:
            return exports.get(session, current_actor(), export_id)
