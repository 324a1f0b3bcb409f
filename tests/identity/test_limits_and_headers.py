"""Rate limits (the 101st request in a minute), security headers and CORS."""

from tests.helpers import bearer


def test_the_101st_request_in_a_minute_is_429(make_app, user_of):
    app = make_app(RATE_LIMIT_DEFAULT="100 per minute")
    client = app.test_client()
    statuses = [client.get("/api/v1/users/me/permissions").status_code for _ in range(101)]
    assert statuses == [200] * 100 + [429]
    refused = client.get("/api/v1/users/me/permissions")
    assert refused.status_code == 429
    assert set(refused.json) == {"code", "status", "message", "errors"}
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "100" and refused.headers["X-RateLimit-Remaining"] == "0"


def test_signed_in_users_are_counted_apart_from_their_address(make_app, user_of):
    app = make_app(RATE_LIMIT_DEFAULT="3 per minute")
    client = app.test_client()
    first, second = bearer(app, user_of()), bearer(app, user_of())
    paths = ["/api/v1/users/me", "/api/v1/users/me/addresses", "/api/v1/users/me/permissions", "/api/v1/users/me"]
    assert [client.get(path, headers=first).status_code for path in paths] == [200, 200, 200, 429]  # one budget
    assert client.get("/api/v1/users/me", headers=second).status_code == 200
    assert client.get("/api/v1/users/me/permissions").status_code == 200
    ok = client.get("/api/v1/users/me", headers=second)
    assert ok.headers["X-RateLimit-Limit"] == "3" and ok.headers["X-RateLimit-Remaining"] == "1"


def test_operational_endpoints_are_not_limited(make_app):
    client = make_app(RATE_LIMIT_DEFAULT="1 per minute").test_client()
    assert {client.get("/healthz").status_code for _ in range(3)} == {200}


def test_security_headers_on_every_response(client):
    for path in ("/api/v1/users/me/permissions", "/api/v1/users/me", "/healthz", "/api/v1/nope"):
        response = client.get(path)
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'", path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in response.headers


def test_the_docs_page_may_load_its_assets_and_tls_gets_hsts(client):
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "script-src 'self'" in docs.headers["Content-Security-Policy"]
    secure = client.get("/healthz", base_url="https://shop.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_cors_only_for_configured_origins(make_app):
    client = make_app(CORS_ORIGINS="https://shop.example").test_client()
    allowed = client.options("/api/v1/users/me", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    other = client.get("/api/v1/users/me/permissions", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_cors_by_default(client):
    response = client.get("/api/v1/users/me/permissions", headers={"Origin": "https://shop.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_openapi_document_describes_the_new_endpoints_and_their_security(client):
    spec = client.get("/api/openapi.json").json
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "apiKey"}
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/auth/login/mfa",
                 "/api/v1/auth/mfa/totp", "/api/v1/auth/mfa/totp/confirm", "/api/v1/users/me",
                 "/api/v1/users/me/permissions", "/api/v1/users/me/addresses", "/api/v1/users",
                 "/api/v1/users/{user_id}", "/api/v1/settings", "/api/v1/security-events", "/api/v1/api-keys",
                 "/api/v1/api-keys/{key_id}"):
        assert path in spec["paths"], path
    assert spec["paths"]["/api/v1/settings"]["patch"]["security"] == [{"bearerAuth": []}, {"apiKey": []}]
