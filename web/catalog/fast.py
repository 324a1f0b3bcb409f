"""Cached catalog pages answered in front of Flask: a hit costs the rate limiter's one round trip and little else.

A guest's or customer's `GET /api/v1/products` (listing, search) or `GET /api/v1/products/<id>` whose page
is in the shared cache needs none of Flask's request machinery: no request context, no URL routing, no
smorest, no flask-limiter resolving which limits apply. Profiles of a cached hit put most of its CPU there.
This WSGI layer wraps the app's `wsgi_app` and serves exactly those requests itself, doing what the app
would do for them, in the same order and with the same answer:

- the caller is a guest, or a customer whose bearer token verifies (web.auth.guard's own functions);
- one round trip (web.limits' script, the limiter's key and limit) counts the hit against the same Redis
  counter as the app's limiter (so limits stay shared across processes and with requests the app serves),
  reads the token's revocation keys and the versioned page;
- the body, ETag, 304, Cache-Control, Vary, security headers, X-RateLimit-* headers, X-Request-ID, the
  request metrics and the access-log line are the app's (tests/catalog/test_fast.py compares them).

Anything else is handed to the app untouched: other paths and methods, API keys, credentials that do not
verify or belong to staff, CORS requests, a body, NUL characters, Redis failing. When the round trip was
taken but the page cannot be served from here (a miss, a revoked token, the limit exceeded), the trip's
answer is handed to the app with the request (`web.limits.TRIP_TAKEN`): the app renders the page, answers
401 or 429 exactly as before, and the hit is not counted twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.http import parse_etags

from logconfig import request_id_var
from models.catalog.cache import CatalogCache, query_key, reads_public_pages
from models.errors import DomainError
from models.users.auth import revocation_keys, revoked_by
from models.users.permissions import Actor
from web import metrics
from web.auth.guard import bearer_token, check, token_actor, verified_claims
from web.browser import API_CSP, HSTS
from web.limits import TRIP_TAKEN, OneTripFixedWindow, limiter
from web.middleware import VALID_REQUEST_ID, log as access_log

log = logging.getLogger(__name__)

LISTING = "/api/v1/products"
DETAIL = re.compile(r"/api/v1/products/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
# Request headers that send a request to the app: they change who the caller is or what the answer holds.
TO_THE_APP = ("HTTP_X_API_KEY", "HTTP_TRANSFER_ENCODING")
NUL = "\x00"


class CachedPages:
    """WSGI middleware: serve shared-cache hits of the product pages, hand everything else to `app`."""

    def __init__(self, flask_app: Flask, app):
        self.flask_app = flask_app
        self.app = app
        settings = flask_app.extensions["shop"].settings
        self.secret = settings.SECRET_KEY
        self.max_age = settings.CATALOG_HTTP_MAX_AGE
        self.cors = bool(settings.CORS_ORIGINS.strip(" ,"))
        rules = {rule.endpoint: rule.rule for rule in flask_app.url_map.iter_rules()}
        self.listing_rule, self.detail_rule = rules["products.Products"], rules["products.ProductItem"]
        self._limit = None  # (RateLimitItem, key prefix, scope), resolved on the first request

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "GET" or environ.get("SCRIPT_NAME"):
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if path == LISTING:
            rule, match = self.listing_rule, None
        elif (match := DETAIL.fullmatch(path)) is not None:
            rule = self.detail_rule
        else:
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            answer = self._serve(environ, path, match)
        except Exception:  # noqa: BLE001  (the app answers instead, as it would have: nothing was counted)
            log.exception("cached page layer failed; the app answers")
            answer = None
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        request_id = self._stamp(environ, headers)
        start_response(status, headers)
        self._record(environ, rule, status, started, request_id)
        return [body]

    def _serve(self, environ, path: str, match) -> tuple[str, list, bytes] | None:
        """The answer to a cache hit, or None to hand the request to the app (with the trip, if one was taken)."""
        if (any(environ.get(name) for name in TO_THE_APP) or environ.get("CONTENT_LENGTH") not in (None, "", "0")
                or (self.cors and environ.get("HTTP_ORIGIN"))):
            return None
        query = environ.get("QUERY_STRING", "")
        if NUL in path or any(NUL in value for name, value in environ.items()
                              if name.startswith("HTTP_") and isinstance(value, str)):
            return None
        claims, actor = self._caller(environ)
        if actor is None:
            return None
        if match is None:
            try:  # as werkzeug's Request.args reads it
                text = query.encode("latin-1").decode()
            except UnicodeError:
                return None
            pairs = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
            if any(NUL in key or NUL in value for key, value in pairs):
                return None
            along = CatalogCache.list_keys(query_key(pairs))
        else:
            if query:
                return None  # the app says what it makes of a query on a product's page
            along = CatalogCache.detail_keys(match.group(1))
        strategy = limiter._limiter  # the app's, re-made by each init_app, as the app's limiter uses it
        if not (limiter.enabled and isinstance(strategy, OneTripFixedWindow)):
            return None
        item, prefix, scope = self._limit or self._resolve_limit()
        caller_key = f"user:{actor.user_id}" if claims is not None else f"ip:{environ.get('REMOTE_ADDR')}"
        revocation = revocation_keys(claims) if claims is not None else ()
        try:
            # The key flask-limiter builds: [prefix,] caller, scope (Limiter.__evaluate_limits).
            key = item.key_for(*([prefix] if prefix else []), caller_key, scope)
            trip = strategy.trip(item, key, revocation, along)
        except Exception:  # noqa: BLE001  (Redis failing: the app's limiter fails open, its guard closed)
            return None
        page = trip.page[1] if trip.page else None
        if (page is None or trip.count > item.amount
                or (claims is not None and revoked_by(trip.revocation, claims))):
            environ[TRIP_TAKEN] = trip  # the app renders, or refuses with 401 or 429, without counting again
            return None
        return self._page(environ, page, public=claims is None, window=(item.amount, trip.window(item)))

    def _caller(self, environ) -> tuple[dict | None, Actor | None]:
        """(claims, actor) of a guest or customer served the shared pages; (None, None) for the app to decide."""
        try:
            token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
            if token is None:
                return None, Actor(ip=environ.get("REMOTE_ADDR"))
            claims = verified_claims(self.secret, token)
            actor = token_actor(claims, environ.get("REMOTE_ADDR"))
            check(actor, "products:view")
        except (DomainError, ValueError, KeyError):
            return None, None
        return (claims, actor) if reads_public_pages(actor) else (None, None)

    def _resolve_limit(self):
        """The one application-wide limit the app applies to these pages, with its key's prefix and scope."""
        with self.flask_app.app_context():
            limits = list(limiter.limit_manager.application_limits)
            if len(limits) != 1 or list(limiter.limit_manager.default_limits) or limiter._meta_limits:
                raise RuntimeError("the cached page layer knows one application limit only")
            self._limit = (limits[0].limit, limiter._key_prefix, limits[0].scope_for(self.listing_rule, "GET"))
        return self._limit

    def _page(self, environ, body: bytes, public: bool, window) -> tuple[str, list, bytes]:
        """web.catalog.http.json_response's answer, and the headers the app's after-request hooks add."""
        etag = hashlib.sha256(body).hexdigest()[:32]
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(etag):
            status, headers, body = "304 NOT MODIFIED", [], b""
        else:
            status = "200 OK"
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers += [("ETag", f'"{etag}"'),
                    ("Cache-Control", f"public, max-age={self.max_age}" if public else "private, no-cache"),
                    ("Vary", "Authorization"),
                    # web.browser.security_headers
                    ("Content-Security-Policy", API_CSP), ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY")]
        if environ.get("wsgi.url_scheme") in ("https", "wss"):
            headers.append(("Strict-Transport-Security", HSTS))
        amount, (reset, remaining) = window
        headers += [("X-RateLimit-Limit", str(amount)), ("X-RateLimit-Remaining", str(remaining)),
                    ("X-RateLimit-Reset", str(int(reset + 1)))]
        return status, headers, body

    @staticmethod
    def _stamp(environ, headers: list) -> str:
        """web.middleware's request id: the caller's when it is plain, else a new one."""
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        headers.append(("X-Request-ID", request_id))
        return request_id

    @staticmethod
    def _record(environ, rule: str, status: str, started: float, request_id: str) -> None:
        """The request's metrics (web.metrics) and access-log line (web.middleware), as the app records them."""
        code = status.split(" ", 1)[0]
        elapsed = time.perf_counter() - started
        metrics.LATENCY.labels("GET", rule).observe(elapsed)
        metrics.REQUESTS.labels("GET", rule, code).inc()
        if access_log.isEnabledFor(logging.INFO):
            token = request_id_var.set(request_id)
            try:
                access_log.info("request", extra={
                    "request_id": request_id, "method": "GET", "path": environ.get("PATH_INFO", ""),
                    "status": int(code), "duration_ms": round(elapsed * 1000, 2),
                    "remote_addr": environ.get("REMOTE_ADDR")})
            finally:
                request_id_var.reset(token)


def install(app: Flask) -> None:
    """Put the cached-page layer in front of `app` (it must have its products routes registered)."""
    app.wsgi_app = CachedPages(app, app.wsgi_app)
