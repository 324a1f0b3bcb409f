"""Request ids and one JSON access-log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request

from logconfig import request_id_var

log = logging.getLogger("web.access")

# Accept a caller's id only if it is short and plain, so it is safe in logs and headers.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def register(app: Flask) -> None:
    @app.before_request
    def bind_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_token = request_id_var.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def stamp_and_log(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        started = g.get("started")
        if not log.isEnabledFor(logging.INFO):  # production runs at WARNING: skip building the line
            return response
        log.info("request", extra={
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "remote_addr": request.remote_addr,
        })
        return response

    @app.teardown_request
    def unbind_request_id(_exc):
        token = g.pop("request_token", None)
        if token is not None:
            request_id_var.reset(token)
