"""What browsers are told: CORS only for `CORS_ORIGINS`, and security headers on every response."""

from __future__ import annotations

from flask import Flask, request
from flask_cors import CORS

from settings import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and GraphiQL (development) load their script, styles and images from this app, and fetch from it.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
HSTS = "max-age=31536000; includeSubDomains"


def register(app: Flask, settings: Settings) -> None:
    origins = [origin.strip() for origin in settings.CORS_ORIGINS.split(",") if origin.strip()]
    if origins:
        CORS(app, origins=origins, supports_credentials=False, max_age=600,
             allow_headers=["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key", "X-Request-ID"],
             expose_headers=["X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                             "X-RateLimit-Reset"])

    @app.after_request
    def security_headers(response):
        docs = request.path.startswith(("/api/docs", "/graphql/ide", "/graphql/assets"))
        response.headers["Content-Security-Policy"] = DOCS_CSP if docs else API_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not docs:
            response.headers.setdefault("Cache-Control", "no-store")
        if request.is_secure:
            response.headers["Strict-Transport-Security"] = HSTS
        return response
