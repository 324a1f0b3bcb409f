"""The Flask view at /graphql: one session per request, public queries served from the catalog's page cache
(for guests and for callers who see what a guest sees), and errors carrying a code in `extensions`."""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache

from flask import Response, request
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from strawberry.flask.views import GraphQLView

from models.catalog.cache import reads_public_pages
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
# Root fields whose answer is the same for every caller allowed `products:view`: a query made of these
# only is the same page for a guest and a customer. `me`, `orders`, `importJobs`... depend on the caller.
PUBLIC_ROOT_FIELDS = frozenset({"products", "product", "categories", "__typename"})


def guest_cache_key() -> str:
    """The page-cache key of a public query: its method and exact text (GET query string or POST body)."""
    raw = request.query_string if request.method == "GET" else request.get_data(cache=True)
    return CACHE_PREFIX + hashlib.sha256(request.method.encode() + b"\0" + raw).hexdigest()


def request_query() -> str | None:
    """The query text of this request (GET `query`, or a JSON body's `query`); None if there is none."""
    if request.method == "GET":
        given = request.args.getlist("query")  # repeated: which one runs is not ours to guess
        return given[0] if len(given) == 1 else None
    body = request.get_json(silent=True, cache=True)
    query = body.get("query") if isinstance(body, dict) else None
    return query if isinstance(query, str) else None


@lru_cache(maxsize=512)
def only_public_fields(query: str) -> bool:
    """Whether every operation in `query` is a query reading public catalog root fields only.

    Anything else (a mutation, `me`, `orders`, introspection, text that does not parse) is not shared:
    its answer may depend on who asks.
    """
    try:
        document = parse(query)
    except GraphQLSyntaxError:
        return False
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]

    def public(selection_set, seen: frozenset) -> bool:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value not in PUBLIC_ROOT_FIELDS:
                    return False
            elif isinstance(selection, InlineFragmentNode):
                if not public(selection.selection_set, seen):
                    return False
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen or name not in fragments or not public(fragments[name].selection_set, seen | {name}):
                    return False
            else:
                return False
        return True

    return bool(operations) and all(op.operation == OperationType.QUERY and public(op.selection_set, frozenset())
                                    for op in operations)


def shared_cache_key(guest: bool) -> str | None:
    """The page-cache key this request reads and writes, or None when its answer may be the caller's own.

    A guest's answers are all shareable (a guest sees public fields only, and answers with errors are
    never stored); a signed-in caller's only when it sees what a guest sees and asks for public fields only.
    """
    if not reads_public_pages(current_actor()):
        return None
    if not guest and not only_public_fields(request_query() or ""):
        return None
    return guest_cache_key()


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
        key = shared_cache_key(is_guest())
        along = read_along_answer()  # read with the rate limit (see web.graphql); used only with a key
        cache = services().cache
        if key is not None:
            version, body = along or cache.lookup_list(key)
            if body is not None:
                return self._headers(Response(body, mimetype="application/json"))
        with db().session() as session:
            self.context = Context(actor=actor, session=session, storage=services().storage,
                                   loaders=Loaders(session), search=services().search)
            response = super().dispatch_request()
        if key is not None and response.status_code == 200 and b'"errors"' not in response.get_data():
            cache.put_list(key, version, response.get_data())
        return self._headers(response)

    @staticmethod
    def _headers(response: Response) -> Response:
        """The answer depends on the credentials; no cache stores it (`no-store`, set in web.browser)."""
        response.vary.add("Authorization")
        return response

    def get_context(self, request, response):
        return self.context

    def process_result(self, request, result):
        data = {"data": result.data}
        if result.errors:
            data["errors"] = [format_error(error) for error in result.errors]
        return data
