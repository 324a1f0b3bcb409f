"""The Flask view at /graphql: one session per request, guests served from the catalog's page cache,
and errors carrying a code in `extensions`."""

from __future__ import annotations

import hashlib
import logging

from flask import Response, request
from graphql import GraphQLError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from strawberry.flask.views import GraphQLView

from models.errors import Conflict, DomainError, Forbidden, InvalidRequest, NotFound, Unauthorized
from web.auth.guard import current_actor
from web.catalog import services
from web.catalog.http import is_guest
from web.extensions import db
from web.graphql.loaders import Loaders
from web.graphql.schema import Context
from web.limits import read_along_answer

log = logging.getLogger(__name__)

CODES = {Unauthorized: ("UNAUTHENTICATED", 401), Forbidden: ("FORBIDDEN", 403), NotFound: ("NOT_FOUND", 404),
         InvalidRequest: ("BAD_REQUEST", 400), Conflict: ("CONFLICT", 409)}
OUTAGE = (OperationalError, PoolTimeout)
CACHE_PREFIX = "graphql:"


def guest_cache_key() -> str:
    """The page-cache key of a guest's query: its method and exact text (GET query string or POST body)."""
    raw = request.query_string if request.method == "GET" else request.get_data(cache=True)
    return CACHE_PREFIX + hashlib.sha256(request.method.encode() + b"\0" + raw).hexdigest()


def error_extensions(error: GraphQLError) -> dict:
    """The code (and HTTP-like status and field messages) a client reads from `extensions`."""
    original = error.original_error
    if original is None:
        if error.extensions and "code" in error.extensions:
            return error.extensions
        code = "INTROSPECTION_DISABLED" if "introspection" in error.message.lower() else "GRAPHQL_VALIDATION_FAILED"
        return {"code": code}
    for kind, (code, status) in CODES.items():
        if isinstance(original, kind):
            return {"code": code, "status": status, "fields": original.errors}
    if isinstance(original, DomainError):
        return {"code": "BAD_REQUEST", "status": 400, "fields": original.errors}
    if isinstance(original, OUTAGE):
        return {"code": "SERVICE_UNAVAILABLE", "status": 503}
    return {"code": "INTERNAL_SERVER_ERROR", "status": 500}


def format_error(error: GraphQLError) -> dict:
    extensions = error_extensions(error)
    message = error.message
    if extensions["code"] == "INTERNAL_SERVER_ERROR":
        log.error("graphql resolver failed", exc_info=error.original_error)
        message = "internal server error"
    elif extensions["code"] == "SERVICE_UNAVAILABLE":
        message = "the database is unavailable; try again later"
    body = {"message": message, "extensions": extensions}
    if error.locations:
        body["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        body["path"] = error.path
    return body


class ShopGraphQLView(GraphQLView):
    """Strawberry's Flask view with our session, caller, cache and error shape."""


    def dispatch_request(self):
        actor = current_actor()
        key = self._guest_key() if is_guest() else None
        cache = services().cache
        if key is not None:  # usually already read in the rate limiter's round trip (see web.graphql)
            version, body = read_along_answer() or cache.lookup_list(key)
            if body is not None:
                return Response(body, mimetype="application/json")
        with db().session() as session:
            self.context = Context(actor=actor, session=session, storage=services().storage,
                                   loaders=Loaders(session), search=services().search)
            response = super().dispatch_request()
        if key is not None and response.status_code == 200 and b'"errors"' not in response.get_data():
            cache.put_list(key, version, response.get_data())
        return response

    @staticmethod
    def _guest_key() -> str:
        return guest_cache_key()

    def get_context(self, request, response):
        return self.context

    def process_result(self, request, result):
        data = {"data": result.data}
        if result.errors:
            data["errors"] = [format_error(error) for error in result.errors]
        return data
