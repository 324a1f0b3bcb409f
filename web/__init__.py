"""The Flask app factory: `create_app()` builds the thin API in front of the workers."""

from __future__ import annotations

from flask import Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from bootstrap import Shop, bootstrap
from logconfig import configure_logging
from settings import Settings
from web import browser, errors, graphql, input as input_guard, limits, metrics, middleware, outages
from web.auth import audit, guard
from web.extensions import Api

DOCS_ASSETS = "/api/docs/assets/"


def create_app(settings: Settings | None = None, shop: Shop | None = None) -> Flask:
    """Build the app on `shop`, or on what bootstrap builds from `settings` (default: from the environment)."""
    shop = shop or bootstrap(settings)
    settings = shop.settings
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

    app.extensions["shop"] = shop  # read through web.extensions.runtime() / db()
    middleware.register(app)  # before metrics: it stamps the request's start time
    metrics.register(app, shop.db, shop.redis)
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
    from web.catalog import fast
    fast.install(app)  # cached product pages answered in front of Flask (docs/catalog.md)
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
