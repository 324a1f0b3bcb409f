"""POST /api/v1/webhooks/stripe: verify, store once, answer; a worker does the rest."""

from __future__ import annotations

import logging

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from integrations.payments import InvalidSignature, MalformedEvent
from models.orders.webhooks import store_event
from models.security.events import record_event
from web.extensions import db, runtime

log = logging.getLogger(__name__)
blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks", description="Provider webhooks")


@blp.route("/stripe")
class StripeWebhook(MethodView):
    @blp.response(200, description="Stored (or seen before)")
    @blp.alt_response(400, description="The signature does not verify")
    def post(self):
        """A Stripe event (or the sandbox's, signed the same way); a repeated event is a no-op."""
        try:
            event = runtime().payment_gateway.parse_event(request.get_data(cache=False),
                                                          request.headers.get("Stripe-Signature", ""))
        except MalformedEvent as exc:
            log.warning("signed webhook with an unexpected shape", extra={"error": str(exc)})
            with db().session() as session:
                record_event(session, "webhook_malformed", ip=request.remote_addr,
                             provider=runtime().settings.PAYMENTS_PROVIDER, error=str(exc))
            abort(400, message="not an event", errors={"json": [str(exc)]})
        except InvalidSignature as exc:
            log.warning("webhook signature rejected", extra={"error": str(exc)})
            abort(400, message="invalid signature")
        with db().session() as session:
            stored = store_event(session, runtime().settings.PAYMENTS_PROVIDER, event.id, event.type,
                                 event.payload)
        return {"received": True, "duplicate": not stored}
