"""Product pages answered in front of Flask: a hit costs the rate limiter's one round trip, a miss one query more.

A `GET /api/v1/products` (listing, search) or `GET /api/v1/products/<id>` needs none of Flask's request
machinery: no request context, no URL routing, no smorest, no marshmallow, no flask-limiter resolving
which limits apply. Profiles put most of a cached hit's CPU there, and a good part of a render's. This
WSGI layer wraps the app's `wsgi_app` and serves those requests itself, doing what the app would do for
them, in the same order and with the same answer:

- the caller is a guest, or a signed-in user whose bearer token verifies (web.auth.guard's own functions)
  and who may view products;
- one round trip (web.limits' script, the limiter's key and limit) counts the hit against the same Redis
  counter as the app's limiter (so limits stay shared across processes and with requests the app serves),
  reads the token's revocation keys and, for callers served the shared pages, the versioned page;
- a page not in the cache (every page of staff and admins, who are never served the shared pages) is
  rendered from PostgreSQL by web.catalog.render, the functions the app's views call, when its query has
  the plain form `parse_listing` reads; a guest's or customer's render is then cached as the view caches it;
- the body, ETag, 304, Cache-Control, Vary, security headers, X-RateLimit-* headers, X-Request-ID, the
  request metrics and the access-log line are the app's (tests/catalog/test_fast.py and test_render.py
  compare them).

Anything else is handed to the app untouched: other paths and methods, API keys, credentials that do not
verify, CORS requests, a body, NUL characters, Redis failing, a staff reader's query in another form.
When the round trip was taken but the page cannot be served from here (a revoked token, the limit
exceeded, a query only the app parses, a product, category or cursor the render refuses, the database
unreachable), the trip's answer is handed to the app with the request (`web.limits.TRIP_TAKEN`): the app
renders the page or answers 401, 404, 400, 422, 429 or its outage answer exactly as before, and the hit
is not counted twice.
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
from web.catalog.http import OUTAGE, OUTAGE_SEEN
from web.catalog.render import ListingQuery, parse_listing, render_detail, render_listing
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
        claims, actor, public = self._caller(environ)
        if actor is None:
            return None
        listing = cache_key = None
        if match is None:
            try:  # as werkzeug's Request.args reads it
                text = query.encode("latin-1").decode()
            except UnicodeError:
                return None
            pairs = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
            if any(NUL in key or NUL in value for key, value in pairs):
                return None
            listing = parse_listing(pairs)  # None: only the app parses it (a hit is still served)
            if listing is None and not public:
                return None
            cache_key = query_key(pairs)
            along = CatalogCache.list_keys(cache_key) if public else None
        else:
            if query:
                return None  # the app says what it makes of a query on a product's page
            along = CatalogCache.detail_keys(match.group(1)) if public else None
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
        if trip.count > item.amount or (claims is not None and revoked_by(trip.revocation, claims)):
            environ[TRIP_TAKEN] = trip  # the app refuses with 401 or 429, without counting again
            return None
        if page is None:
            if (page := self._render(environ, match, listing)) is None:
                environ[TRIP_TAKEN] = trip  # the app renders or refuses, without counting again
                return None
            if public:  # written under the version read before the database, as the app's view does
                cache = self.flask_app.extensions["shop"].catalog_cache
                if match is None:
                    cache.put_list(cache_key, trip.page[0], page)
                else:
                    cache.put_detail(match.group(1), trip.page[0], page)
        return self._page(environ, page, public=claims is None, window=(item.amount, trip.window(item)))

    def _render(self, environ, match, listing: ListingQuery | None) -> bytes | None:
        """The page rendered from PostgreSQL (web.catalog.render, as the app's view renders it); None for the app.

        The app then answers what is not a plain page: a product or category that does not exist, a cursor
        it did not give out (its 404 and 400), a query only it parses. A database it cannot reach is noted
        for the app's view, which answers from the outage snapshot or with 503 without trying again.
        """
        shop = self.flask_app.extensions["shop"]
        try:
            if match is not None:
                return render_detail(shop.db.reads, shop.storage.url, uuid.UUID(match.group(1)))
            if listing is None:
                return None
            return render_listing(shop.db.reads, shop.search, shop.storage.url, listing)
        except DomainError:
            return None
        except OUTAGE as exc:
            environ[OUTAGE_SEEN] = exc
            return None
        except Exception:  # noqa: BLE001  (the app renders it again and answers, counted once)
            log.exception("rendering a product page in front of the app failed; the app answers")
            return None

    def _caller(self, environ) -> tuple[dict | None, Actor | None, bool]:
        """(claims, actor, whether served the shared pages) of a guest or a signed-in reader; actor None for the app.

        Staff and admins are served here too, never from (or into) the shared pages: their pages are
        rendered from PostgreSQL for them, as the app's view does.
        """
        try:
            token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
            if token is None:
                return None, Actor(ip=environ.get("REMOTE_ADDR")), True
            claims = verified_claims(self.secret, token)
            actor = token_actor(claims, environ.get("REMOTE_ADDR"))
            check(actor, "products:view")
        except (DomainError, ValueError, KeyError):
            return None, None, False
        return claims, actor, reads_public_pages(actor)

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
