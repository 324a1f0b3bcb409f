"""The Flask app factory: `create_app()` builds the thin API in front of the workers."""

from __future__ import annotations

import redis
from flask import Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from logconfig import configure_logging
from models.db import Database
from models.outbox import Relay
from settings import Settings, get_settings
from tasks import make_celery, publisher
from web import errors, metrics, middleware
from web.auth import guard
from web.extensions import Api, Runtime

DOCS_ASSETS = "/api/docs/assets/"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    settings.check_production()
    configure_logging(settings.LOG_LEVEL)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        API_TITLE="Shop API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=DOCS_ASSETS,
    )

    db = Database(settings.DATABASE_URL, settings.DATABASE_POOL_SIZE, settings.SERVICE_TIMEOUT)
    celery = make_celery(settings)
    app.extensions["shop"] = Runtime(
        settings=settings, db=db, relay=Relay(db, publisher(celery)), celery=celery,
        redis=redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.SERVICE_TIMEOUT,
                                   socket_connect_timeout=settings.SERVICE_TIMEOUT),
    )

    middleware.register(app)  # before metrics: it stamps the request's start time
    metrics.register(app, db)
    api = Api(app)
    errors.register(app)
    guard.init_app(app, api, settings)
    _register_blueprints(api)
    app.add_url_rule(DOCS_ASSETS + "<path:filename>", "docs_assets",
                     lambda filename: send_from_directory(swagger_ui_path, filename))

    from web.cli import register as register_cli
    from web.imports.cli import register as register_imports_cli
    register_cli(app)
    register_imports_cli(app)
    return app


def _register_blueprints(api: Api) -> None:
    from web.auth.routes import blp as auth
    from web.health import blp as health
    from web.imports.routes import blp as imports

    for blueprint in (health, auth, imports):
        api.register_blueprint(blueprint)
