"""Request ids, one JSON access-log line per request, and no cookie-session work for requests without one."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request
from flask.sessions import SecureCookieSessionInterface

from logconfig import request_id_var

log = logging.getLogger("web.access")

# Accept a caller's id only if it is short and plain, so it is safe in logs and headers.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class SessionWhenSent(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without building its signer for a request that sent no session cookie.

    The API sets no session cookie, yet Flask opened (and saved) one on every request: a signer built with
    its key derivation per request. Same answers: an empty session, and nothing written back unless the
    view used it.
    """

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if session or session.modified or session.accessed:
            super().save_session(app, session, response)


def register(app: Flask) -> None:
    app.session_interface = SessionWhenSent()

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
