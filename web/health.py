"""Liveness and readiness, as API.md fixes them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import text

from web.extensions import runtime

blp = Blueprint("health", __name__, description="Operational probes")


class ReadySchema(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(keys=fields.String(), values=fields.String())


def _postgresql(rt) -> None:
    with rt.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _rabbitmq(rt) -> None:
    with rt.celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=rt.settings.SERVICE_TIMEOUT)


def _redis(rt) -> None:
    rt.redis.ping()


CHECKS = {"postgresql": _postgresql, "rabbitmq": _rabbitmq, "redis": _redis}


def check_services(rt, checks: dict = CHECKS) -> dict[str, str]:
    """Run every check at once; map each service to "ok" or what went wrong."""
    def run(check):
        try:
            check(rt)
            return "ok"
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc).strip()[:200]}"

    with ThreadPoolExecutor(len(checks)) as pool:
        return dict(zip(checks, pool.map(run, checks.values()), strict=True))


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, ReadySchema)
    def get(self):
        """Liveness: 200 while the process runs."""
        return {"status": "alive", "checks": {}}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, description="A service is down; `errors` names it")
    def get(self):
        """Readiness: 200 only when PostgreSQL, RabbitMQ and Redis answer."""
        results = check_services(runtime())
        down = {name: result for name, result in results.items() if result != "ok"}
        if down:
            abort(503, message="not ready: " + ", ".join(down) + " unreachable", errors=down)
        return {"status": "ready", "checks": results}
