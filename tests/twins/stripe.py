"""A Stripe twin on loopback: the PaymentIntent and Refund endpoints our adapter calls.

It speaks Stripe's wire format (form-encoded requests, JSON objects with
`object`, errors as `{"error": {...}}`), honours `Idempotency-Key` (a replay
gets the first answer), and signs events the way Stripe signs webhooks.
Test cards: `pm_card_visa` succeeds, `pm_card_chargeDeclined` is declined,
`pm_card_async` stays `processing` until a test calls `settle`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from integrations.payments.signing import sign

from tests.twins.loopback import LoopbackServer

DECLINE = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
           "message": "Your card was declined."}


class StripeTwin(LoopbackServer):
    def __init__(self, api_key: str = "sk_test_twin", webhook_secret: str = "whsec_twin"):  # noqa: S107
        self.api_key, self.webhook_secret = api_key, webhook_secret
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.fail_next = 0  # answer this many requests with 500 first
        self.refund_status = "succeeded"
        self._replies: dict[str, tuple[int, dict]] = {}
        self._lock = threading.Lock()
        self._listen(make_server("127.0.0.1", 0, self._app, threaded=True))
        self.url = self.base_url

    def reset(self) -> None:
        with self._lock:
            self.intents.clear(), self.refunds.clear(), self.requests.clear(), self._replies.clear()
            self.fail_next, self.refund_status = 0, "succeeded"

    def event(self, event_type: str, obj: dict, event_id: str | None = None) -> tuple[bytes, dict]:
        """A webhook body and headers, signed as Stripe signs them."""
        body = json.dumps({"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
                           "type": event_type, "created": int(time.time()), "data": {"object": obj}}).encode()
        return body, {"Stripe-Signature": sign(body, self.webhook_secret), "Content-Type": "application/json"}

    def _app(self, environ, start_response):
        request = Request(environ)
        status, body = self._handle(request)
        return Response(json.dumps(body), status, content_type="application/json")(environ, start_response)

    def _handle(self, request: Request) -> tuple[int, dict]:
        with self._lock:
            self.requests.append({"method": request.method, "path": request.path, "form": request.form.to_dict(),
                                  "idempotency_key": request.headers.get("Idempotency-Key")})
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
            if self.fail_next:
                self.fail_next -= 1
                return 500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}
            key = request.headers.get("Idempotency-Key")
            if key and key in self._replies:
                return self._replies[key]
            reply = self._route(request)
            if key:
                self._replies[key] = reply
            return reply

    def _route(self, request: Request) -> tuple[int, dict]:
        path, form = request.path, request.form
        if request.method == "POST" and path == "/v1/payment_intents":
            return self._create_intent(form)
        if match := re.fullmatch(r"/v1/payment_intents/(pi_\w+)(/confirm|/cancel)?", path):
            intent = self.intents.get(match.group(1))
            if intent is None:
                return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                       "message": f"No such payment_intent: '{match.group(1)}'"}}
            if match.group(2) == "/confirm" and request.method == "POST":
                return self._confirm(intent, form.get("payment_method", ""))
            if match.group(2) == "/cancel" and request.method == "POST":
                return self._cancel(intent)
            return 200, intent
        if request.method == "POST" and path == "/v1/refunds":
            return self._refund(form)
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL {path}"}}

    def _create_intent(self, form) -> tuple[int, dict]:
        intent_id = f"pi_{uuid.uuid4().hex[:24]}"
        metadata = {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}
        intent = {"id": intent_id, "object": "payment_intent", "amount": int(form["amount"]),
                  "currency": form["currency"], "status": "requires_payment_method", "metadata": metadata,
                  "client_secret": f"{intent_id}_secret_twin", "last_payment_error": None, "latest_charge": None}
        self.intents[intent_id] = intent
        return 200, intent

    def _confirm(self, intent: dict, method: str) -> tuple[int, dict]:
        if method == "pm_card_chargeDeclined":
            intent.update(status="requires_payment_method", last_payment_error=DECLINE)
            return 402, {"error": {**DECLINE, "payment_intent": intent}}
        status = "processing" if method == "pm_card_async" else "succeeded"
        intent.update(status=status, latest_charge=f"ch_{uuid.uuid4().hex[:24]}", last_payment_error=None)
        return 200, intent

    def settle(self, intent_id: str) -> dict:
        """An asynchronous payment method completes: the intent succeeds."""
        with self._lock:
            self.intents[intent_id]["status"] = "succeeded"
            return self.intents[intent_id]

    @staticmethod
    def _cancel(intent: dict) -> tuple[int, dict]:
        if intent["status"] == "succeeded":
            return 400, {"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                                   "message": "You cannot cancel this PaymentIntent because it has a status of "
                                              "succeeded.", "payment_intent": intent}}
        intent["status"] = "canceled"
        return 200, intent

    def _refund(self, form) -> tuple[int, dict]:
        intent = self.intents[form["payment_intent"]]
        refund = {"id": f"re_{uuid.uuid4().hex[:24]}", "object": "refund", "amount": int(form["amount"]),
                  "payment_intent": intent["id"], "charge": intent["latest_charge"], "status": self.refund_status,
                  "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}}
        self.refunds[refund["id"]] = refund
        return 200, refund

    def charge_refunded(self, intent_id: str) -> dict:
        """The charge object of a `charge.refunded` event, with every refund settled."""
        intent = self.intents[intent_id]
        refunds = [dict(r, status="succeeded") for r in self.refunds.values() if r["payment_intent"] == intent_id]
        return {"id": intent["latest_charge"], "object": "charge", "payment_intent": intent_id, "refunded": True,
                "refunds": {"object": "list", "data": refunds}}
