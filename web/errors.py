"""Domain errors and stray exceptions become API.md's one JSON error shape."""

from __future__ import annotations

import logging

from flask import Flask
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

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_body(500, "internal server error"), 500
