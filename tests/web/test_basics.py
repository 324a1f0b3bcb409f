"""The web shell: errors of one JSON shape, request ids, JSON logs, probes and docs."""

import io
import json
import logging
import uuid
from dataclasses import replace

import pytest

from logconfig import configure_logging

ERROR_KEYS = {"code", "status", "message", "errors"}


def assert_error(response, code):
    assert response.status_code == code
    assert response.mimetype == "application/json"
    assert set(response.json) == ERROR_KEYS and response.json["code"] == code
    assert b"Traceback" not in response.data and b"<html" not in response.data.lower()


def test_unknown_path_is_a_json_404(client):
    assert_error(client.get("/no/such/thing"), 404)
    assert_error(client.get("/api/v1/no/such/thing"), 404)


def test_wrong_method_is_a_json_405(client):
    assert_error(client.delete("/healthz"), 405)
    assert_error(client.get("/api/v1/auth/register"), 405)


def test_malformed_json_is_a_json_400(client):
    response = client.post("/api/v1/auth/register", data="{not json", content_type="application/json")
    assert_error(response, 400)
    assert "json" in response.json["errors"]


def test_unexpected_exception_is_a_json_500_without_a_trace(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    app.config["TESTING"] = False  # let the error handler answer, as in production
    response = app.test_client().get("/boom")
    assert_error(response, 500)
    assert b"secret internals" not in response.data


def test_request_id_is_generated_and_echoed(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    for unsafe in ("has spaces <script>", "x" * 129):
        replaced = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["X-Request-ID"]
        assert replaced != unsafe and len(replaced) == 32


def test_logs_are_json_lines_carrying_the_request_id(client):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    try:
        client.get("/no/such/thing", headers={"X-Request-ID": "trace-me-1"})
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "web.access"]
    assert access and access[-1]["request_id"] == "trace-me-1" and access[-1]["status"] == 404
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["status"] == "alive"


def test_readyz_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"postgresql": "ok", "rabbitmq": "ok", "redis": "ok"}


@pytest.mark.parametrize("down", [
    {"DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:1/shop"},
    {"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//"},
    {"REDIS_URL": "redis://127.0.0.1:1/0"},
    {"DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:1/shop", "REDIS_URL": "redis://127.0.0.1:1/0"},
], ids=["postgresql", "rabbitmq", "redis", "two"])
def test_readyz_names_what_is_down(settings, down):
    from web import create_app

    app = create_app(replace(settings, SERVICE_TIMEOUT=1.0, **down))
    response = app.test_client().get("/readyz")
    assert_error(response, 503)
    names = {"DATABASE_URL": "postgresql", "CELERY_BROKER_URL": "rabbitmq", "REDIS_URL": "redis"}
    assert set(response.json["errors"]) == {names[key] for key in down}
    for name in response.json["errors"]:
        assert name in response.json["message"]


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200 and spec.json["openapi"].startswith("3.")
    for path in ("/healthz", "/readyz", "/api/v1/auth/register", "/api/v1/auth/verify-email"):
        assert path in spec.json["paths"]
    register = spec.json["paths"]["/api/v1/auth/register"]["post"]
    assert {"201", "409", "422"} <= set(register["responses"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.data
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000


def test_access_log_level_is_configurable():
    configure_logging("WARNING")
    try:
        assert logging.getLogger().level == logging.WARNING
    finally:
        configure_logging("INFO")


def test_metrics_count_requests_and_show_the_outbox_backlog(client):
    client.get("/healthz")
    client.get("/no/such/thing")
    body = client.get("/metrics")
    assert body.status_code == 200 and body.mimetype == "text/plain"
    text = body.get_data(as_text=True)
    assert 'http_requests_total{endpoint="/healthz",method="GET",status="200"}' in text
    assert 'http_requests_total{endpoint="unmatched",method="GET",status="404"}' in text
    assert "http_request_duration_seconds_bucket" in text
    assert "outbox_unpublished 0.0" in text


def test_services_check_says_which_url_failed_and_how_to_start_it(settings):
    from web import create_app

    app = create_app(replace(settings, REDIS_URL="redis://127.0.0.1:1/0",
                             CELERY_BROKER_URL="amqp://guest:secret@127.0.0.1:1//", SERVICE_TIMEOUT=1.0))
    result = app.test_cli_runner().invoke(args=["services", "check"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.output
    assert lines[0].startswith("rabbitmq is not reachable at amqp://guest:**@127.0.0.1:1//")
    assert "secret" not in result.output and "rabbitmq-server -detached" in lines[0]
    assert lines[1].startswith("redis is not reachable at redis://127.0.0.1:1/0") and "redis-server" in lines[1]
    assert app.test_cli_runner().invoke(args=["services", "check"]).exit_code == 1


def test_services_check_tells_a_missing_virtual_host_and_a_refused_login_from_a_broker_that_is_down(settings):
    from web import create_app

    vhost = f"no_such_vhost_{uuid.uuid4().hex[:8]}"
    app = create_app(replace(settings, CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
                             SERVICE_TIMEOUT=2.0))
    result = app.test_cli_runner().invoke(args=["services", "check"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"rabbitmq answers at amqp://guest:**@127.0.0.1:5672/{vhost} but has no virtual host")
    assert f"rabbitmqctl add_vhost {vhost}" in line and "rabbitmq-server -detached" not in line

    app = create_app(replace(settings, CELERY_BROKER_URL="amqp://guest:wrong-password@127.0.0.1:5672//",
                             SERVICE_TIMEOUT=2.0))
    result = app.test_cli_runner().invoke(args=["services", "check"])
    [line] = result.output.strip().splitlines()
    assert result.exit_code == 1 and "refused the login" in line and "wrong-password" not in line


def test_services_check_passes_when_all_answer(app):
    result = app.test_cli_runner().invoke(args=["services", "check"])
    assert result.exit_code == 0 and "reachable" in result.output
