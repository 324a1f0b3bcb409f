"""The Flask app factory: `create_app()` builds the thin API in front of the workers."""

from __future__ import annotations

import redis
from flask import Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from logconfig import configure_logging
from models.db import Database
from models.outbox import Relay, relay_options
from models.realtime import Broadcaster
from settings import Settings, get_settings
from tasks import make_celery, publisher
from models import crypto, cursors
from web import browser, errors, graphql, input as input_guard, limits, metrics, middleware, outages
from web.auth import audit, guard
from web.extensions import Api, Runtime

DOCS_ASSETS = "/api/docs/assets/"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    settings.check_production()
    configure_logging(settings.LOG_LEVEL)
    crypto.configure(crypto.KeyRing.parse(settings.PII_KEYS, settings.PII_ACTIVE_KEY))
    cursors.configure(settings.SECRET_KEY)

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
    relay = Relay(db, publisher(celery, settings.OUTBOX_CONFIRM_TIMEOUT), **relay_options(settings))
    app.extensions["shop"] = Runtime(
        settings=settings, db=db, relay=relay, celery=celery,
        redis=redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.SERVICE_TIMEOUT,
                                   socket_connect_timeout=settings.SERVICE_TIMEOUT),
    )

    Broadcaster(db, app.extensions["shop"].redis)  # order events and import progress, after commit
    middleware.register(app)  # before metrics: it stamps the request's start time
    metrics.register(app, db, app.extensions["shop"].redis)
    api = Api(app)
    errors.register(app)
    input_guard.register(app)  # before limits: it drops the limiter's Retry-After from other answers
    outages.init_app(app, settings)
    guard.init_app(app, api, settings)
    limits.init_app(app, settings)
    browser.register(app, settings)
    audit.register()
    _register_blueprints(api)
    graphql.register(app, settings)
    app.add_url_rule(DOCS_ASSETS + "<path:filename>", "docs_assets",
                     lambda filename: send_from_directory(swagger_ui_path, filename))

    from web.cli import register as register_cli
    from web.imports.cli import register as register_imports_cli
    register_cli(app)
    register_imports_cli(app)
    from web.admin.cli import register as register_queues_cli
    register_queues_cli(app)
    from web.backups.cli import register as register_backups_cli
    register_backups_cli(app)
    return app


def _register_blueprints(api: Api) -> None:
    from web.auth.routes import blp as auth
    from web.admin.routes import blp as admin
    from web.auth import oauth  # noqa: F401  (adds the OIDC routes to auth)
    from web.catalog.categories import blp as categories
    from web.catalog.images import blp as product_images
    from web.catalog.images import media
    from web.catalog.products import blp as products
    from web.health import blp as health
    from web.imports.routes import blp as imports
    from web.orders.routes import blp as orders
    from web.shipping.routes import blp as shipping
    from web.users.routes import blp as users
    from web.webhooks.routes import blp as webhooks

    from web.admin.dead_letters import blp as dead_letters

    for blueprint in (health, auth, users, admin, products, product_images, categories, media, orders, webhooks,
                      shipping, imports, dead_letters):
        api.register_blueprint(blueprint)
