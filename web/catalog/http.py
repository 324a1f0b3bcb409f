"""HTTP caching for public catalog reads (ETag, Cache-Control, 304) and answers during a database outage."""

from __future__ import annotations

import hashlib

from flask import Response, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from models.catalog.cache import reads_public_pages
from models.users.permissions import GUEST
from web.auth.guard import current_actor
from web.errors import error_body
from web.extensions import runtime

STALE_HEADER = "X-Catalog-Stale"
# Connection refused, server gone, pool exhausted: the database cannot be reached.
OUTAGE = (OperationalError, PoolTimeout)
# The outage the layer in front of Flask (web.catalog.fast) met rendering this request: the view answers
# from it (snapshot or 503) instead of waiting for the database a second time.
OUTAGE_SEEN = "shop.catalog_outage"


def is_guest() -> bool:
    return current_actor() == GUEST or current_actor().user_id is None and current_actor().api_key_id is None


def reads_shared_pages() -> bool:
    """Whether this request's caller is served the catalog's shared (guest) cache entries."""
    return reads_public_pages(current_actor())


def json_response(body: bytes, stale: bool = False) -> Response:
    """`body` with its ETag and caching headers; 304 when the client holds this version.

    The ETag is the body's, so a customer served a guest's cached page gets the guest's ETag; but only a
    guest's answer is `public`: a signed-in answer is `private` (no shared cache may store it), and every
    answer varies on Authorization.
    """
    etag = hashlib.sha256(body).hexdigest()[:32]
    max_age = runtime().settings.CATALOG_HTTP_MAX_AGE
    if stale:
        cache_control = "no-cache"
    elif is_guest():
        cache_control = f"public, max-age={max_age}"
    else:
        cache_control = "private, no-cache"
    fresh = etag in request.if_none_match
    response = Response(status=304) if fresh else Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    response.headers["Vary"] = "Authorization"
    if stale:
        response.headers[STALE_HEADER] = "true"
        response.headers["Warning"] = '110 - "Response is Stale"'
    return response


def unavailable(_exc: Exception):
    """A write (or an uncached read) while the database cannot be reached."""
    retry_after = runtime().settings.CATALOG_RETRY_AFTER
    body = error_body(503, "the catalog database is unavailable; try again later")
    return body, 503, {"Retry-After": str(retry_after)}
