"""Domain errors and stray exceptions become API.md's one JSON error shape."""

from __future__ import annotations

import logging

import re

from flask import Flask
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.http import HTTP_STATUS_CODES

from models.errors import Conflict, DomainError, Forbidden, InvalidRequest, NotFound, Unauthorized

log = logging.getLogger(__name__)

STATUS = {Conflict: 409, NotFound: 404, InvalidRequest: 400, Unauthorized: 401, Forbidden: 403}


def error_body(code: int, message: str, errors: dict | None = None) -> dict:
    """`{code, status, message, errors}`, the shape of every error answer."""
    return {"code": code, "status": HTTP_STATUS_CODES.get(code, "Error"), "message": message,
            "errors": errors or {}}


def register(app: Flask) -> None:
    """HTTP errors are flask-smorest's (see extensions.Api); these are the rest."""

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        code = next((status for kind, status in STATUS.items() if isinstance(exc, kind)), 400)
        return error_body(code, exc.message, exc.errors), code

    @app.errorhandler(IntegrityError)
    @app.errorhandler(DataError)
    def refused_by_database(exc: IntegrityError | DataError):
        code, message, errors = database_refusal(exc.orig)
        return error_body(code, message, errors), code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_body(500, "internal server error"), 500


# PostgreSQL's SQLSTATE → (status, what the named field is told)
REFUSALS = {
    "23503": (422, "refers to something that does not exist"),
    "23505": (409, "already used"),
    "23502": (422, "required"),
    "23514": (422, "not allowed"),
    "23P01": (409, "conflicts with another record"),
}
KEY_COLUMNS = re.compile(r"Key \(([^)]*)\)")


def database_refusal(error) -> tuple[int, str, dict]:
    """Any constraint or data error PostgreSQL raises, as a 4xx naming the field (from psycopg2's diagnostics)."""
    state = getattr(error, "pgcode", None) or ""
    diag = getattr(error, "diag", None)
    detail = getattr(diag, "message_detail", None) or ""
    if state == "23503" and "still referenced" in detail:
        code, told = 409, "still in use by other records"
    elif state in REFUSALS:
        code, told = REFUSALS[state]
    else:  # class 22: a value out of range, too long, or not of its type
        code, told = 422, "not a value that can be stored here"
    names = _fields(diag, detail)
    return code, f"{', '.join(names)}: {told}", dict.fromkeys(names, [told])


def _fields(diag, detail: str) -> list[str]:
    """The columns PostgreSQL names (a key may have several), else the constraint's, else "body"."""
    columns = [getattr(diag, "column_name", None)]
    if not columns[0] and (match := KEY_COLUMNS.search(detail)):
        columns = [column.strip() for column in match.group(1).split(",")]
    if not columns[0]:
        columns = [_constraint_column(getattr(diag, "constraint_name", None))]
    if not columns[0]:
        return [getattr(diag, "constraint_name", None) or "body"]
    return [camel(column) for column in columns]


def _constraint_column(name: str | None) -> str | None:
    """The first column a named constraint covers, read from the models' metadata."""
    if not name:
        return None
    from models.db import Base

    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if constraint.name == name:
                columns = [column.name for column in constraint.columns]
                if not columns and (match := re.search(r"\b([a-z_]+)\b", str(getattr(constraint, "sqltext", "")))):
                    return match.group(1)
                return columns[0] if columns else None
    return None


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
