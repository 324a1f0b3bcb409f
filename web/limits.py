"""Rate limits (flask-limiter on Redis): per user, per API key, or per IP for guests.

`RATE_LIMIT_DEFAULT` is one budget shared by all `/api/v1` requests of a caller; sign-in, registration,
verification and the MFA steps also get `RATE_LIMIT_AUTH` per IP, which is
what stops password spraying across accounts. A refused request gets 429
with `Retry-After` and the `X-RateLimit-*` headers.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_limiter import Limiter

from settings import Settings

def _settings() -> Settings:
    return current_app.extensions["shop"].settings


# Limits are callables read per request, so each app (and each test's app) uses its own settings.
limiter = Limiter(key_func=lambda: caller_key(), headers_enabled=True, strategy="fixed-window",
                  application_limits=[lambda: _settings().RATE_LIMIT_DEFAULT])


def caller_key() -> str:
    """The signed-in user or API key; else the client's address."""
    from web.auth.guard import current_actor

    try:
        actor = current_actor()
    except Exception:  # a bad token is refused by the guard; count it against the address
        return f"ip:{request.remote_addr}"
    if actor.api_key_id:
        return f"key:{actor.api_key_id}"
    return f"user:{actor.user_id}" if actor.user_id else f"ip:{request.remote_addr}"


def client_address() -> str:
    return f"ip:{request.remote_addr}"


def auth_limit():
    """The tighter per-IP limit of the sign-in endpoints (a decorator for their views)."""
    return limiter.limit(lambda: _settings().RATE_LIMIT_AUTH, key_func=client_address, scope="auth",
                         override_defaults=False)


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        RATELIMIT_STORAGE_URI=settings.REDIS_URL,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX="ratelimit",
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": settings.SERVICE_TIMEOUT},
    )
    limiter.init_app(app)


@limiter.request_filter
def _outside_the_api() -> bool:
    return not request.path.startswith("/api/v1/")
