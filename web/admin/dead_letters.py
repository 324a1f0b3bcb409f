"""/admin/dead-letters: what failed for good, read, replayed and dropped by admins (with MFA)."""

from __future__ import annotations

from flask import abort
from flask.views import MethodView
from flask_smorest import Blueprint
from kombu.exceptions import OperationalError
from marshmallow import fields, validate

import celeryconfig
from integrations.rabbitmq import DeadLetterBox
from models.operations.dead_letters import DeadLetters
from models.operations.queues import SENT_AT_HEADER
from web.auth.guard import current_actor, requires
from web.extensions import runtime
from web.schemas import CamelSchema

blp = Blueprint("dead_letters", __name__, url_prefix="/api/v1/admin/dead-letters",
                description="Tasks that failed for good, waiting in the dead-letter queues")

QUEUE = fields.String(load_default=None, validate=validate.OneOf(celeryconfig.QUEUES),
                      metadata={"description": "a task queue; default: every queue"})


def dead_letters() -> DeadLetters:
    """The dead-letter operations on this app's broker, Redis and database."""
    rt = runtime()
    box = DeadLetterBox(rt.settings.CELERY_BROKER_URL, list(celeryconfig.QUEUES), celeryconfig.TASK_EXCHANGE.name,
                        rt.settings.SERVICE_TIMEOUT, stamp_header=SENT_AT_HEADER)
    return DeadLetters(box, rt.redis, rt.db)


def broker_call(operation, *args, **kwargs):
    """Run a broker operation; 503 when RabbitMQ cannot be reached."""
    try:
        return operation(*args, **kwargs)
    except (OperationalError, OSError):
        abort(503, "the message broker cannot be reached")


class DeadLetterSchema(CamelSchema):
    id = fields.String(metadata={"description": "the task id, kept by a replay"})
    queue = fields.String()
    task = fields.String()
    args = fields.Raw(metadata={"description": "positional arguments, personal data masked"})
    kwargs = fields.Raw(metadata={"description": "keyword arguments, personal data masked"})
    reason = fields.String(metadata={"description": "rejected, delivery_limit or expired"})
    death_count = fields.Integer()
    first_death_at = fields.DateTime(allow_none=True)
    last_death_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    traceback_last_line = fields.String(allow_none=True)


class DeadLetterListSchema(CamelSchema):
    items = fields.List(fields.Nested(DeadLetterSchema))


class DeadLetterListArgs(CamelSchema):
    queue = QUEUE
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ReplayAllSchema(CamelSchema):
    queue = QUEUE
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000),
                           metadata={"description": "replay at most this many"})


@blp.route("")
class DeadLetterList(MethodView):
    @requires("dead_letters:view")
    @blp.arguments(DeadLetterListArgs, location="query")
    @blp.response(200, DeadLetterListSchema)
    @blp.alt_response(503, description="RabbitMQ cannot be reached")
    def get(self, args):
        """Dead letters, oldest first per queue; they stay where they are."""
        return {"items": broker_call(dead_letters().list, current_actor(), args["queue"], args["limit"])}


@blp.route("/replay")
class ReplayAll(MethodView):
    @requires("dead_letters:manage")
    @blp.arguments(ReplayAllSchema)
    @blp.response(200, DeadLetterListSchema)
    @blp.alt_response(503, description="RabbitMQ cannot be reached")
    def post(self, data):
        """Replay up to `limit` dead letters (of `queue`), each under its own task id."""
        return {"items": broker_call(dead_letters().replay_all, current_actor(), data["queue"],
                                     limit=data["limit"])}


@blp.route("/<string:task_id>")
class DeadLetterById(MethodView):
    @requires("dead_letters:view")
    @blp.response(200, DeadLetterSchema)
    @blp.alt_response(404, description="No dead letter for this task id")
    def get(self, task_id):
        """One dead letter, with the error that put it there."""
        return broker_call(dead_letters().show, current_actor(), task_id)

    @requires("dead_letters:manage")
    @blp.response(200, DeadLetterSchema)
    @blp.alt_response(404, description="No dead letter for this task id")
    def delete(self, task_id):
        """Drop it for good (a security event records who did)."""
        return broker_call(dead_letters().drop, current_actor(), task_id)


@blp.route("/<string:task_id>/replay")
class ReplayOne(MethodView):
    @requires("dead_letters:manage")
    @blp.response(200, DeadLetterSchema)
    @blp.alt_response(404, description="No dead letter for this task id")
    def post(self, task_id):
        """Send it back to its queue under the same task id, so an idempotent task still runs once."""
        return broker_call(dead_letters().replay, current_actor(), task_id)
