"""A gateway that behaves like Stripe without a network.

PaymentIntents live in Redis, so every process sees the same ones. `pay`
answers `processing` like a real confirmation does, and the outcome comes
later as a signed `payment_intent.*` event, which the caller hands to the
same verification path as Stripe's webhooks (see `pending_events`).
Payment methods: `sandbox_success` and `sandbox_decline`.
"""

from __future__ import annotations

import json
import time
import uuid

import redis

from integrations.errors import PermanentError
from integrations.payments.base import Amount, Event, Intent, RefundResult, intent_from_object
from integrations.payments.signing import sign, verify

METHODS = {"sandbox_success": "succeeded", "sandbox_decline": "requires_payment_method"}
TTL = 7 * 86400


class SandboxGateway:
    name = "sandbox"

    def __init__(self, redis_url: str, webhook_secret: str, latency: float = 0.0):
        self.redis = redis.Redis.from_url(redis_url)
        self.secret = webhook_secret
        self.latency = latency
        self._paid: tuple[str, dict] | None = None  # the intent this process's last `pay` stored

    def _key(self, kind: str, value: str) -> str:
        return f"sandbox:payments:{kind}:{value}"

    def _store(self, reference: str, intent: dict) -> None:
        self.redis.set(self._key("pi", reference), json.dumps(intent), ex=TTL)

    def pay(self, payment_id: str, order_id: str, amount: Amount, method: str) -> Intent:
        if method not in METHODS:
            raise PermanentError(f"sandbox: unknown payment method {method!r}")
        if self.latency:
            time.sleep(self.latency)  # a vendor round trip, for benchmarks and crash tests
        reference = f"pi_sbx_{uuid.uuid5(uuid.NAMESPACE_URL, 'payment:' + payment_id).hex}"  # idempotent
        outcome = METHODS[method]
        intent = {"id": reference, "object": "payment_intent", "amount": amount.minor,
                  "currency": amount.currency.lower(), "status": outcome, "metadata": {"order_id": order_id,
                                                                                  "payment_id": payment_id},
                  "last_payment_error": None if outcome == "succeeded" else {"message": "Your card was declined."}}
        self._store(reference, intent)
        self._paid = (reference, intent)
        return Intent(reference, "processing", payment_id)

    def retrieve(self, reference: str) -> Intent:
        raw = self.redis.get(self._key("pi", reference))
        if raw is None:
            raise PermanentError(f"sandbox: no PaymentIntent {reference}")
        return intent_from_object(json.loads(raw))

    def cancel(self, payment_id: str, reference: str) -> Intent:
        intent = json.loads(self.redis.get(self._key("pi", reference)) or "null")
        if intent is None:
            raise PermanentError(f"sandbox: no PaymentIntent {reference}")
        if intent["status"] != "succeeded":
            intent["status"] = "canceled"
            self._store(reference, intent)
        return intent_from_object(intent)

    def refund(self, refund_id: str, reference: str, amount: Amount) -> RefundResult:
        return RefundResult(f"re_sbx_{uuid.uuid5(uuid.NAMESPACE_URL, 'refund:' + refund_id).hex}", "succeeded")

    def pending_events(self, reference: str) -> list[tuple[bytes, str]]:
        """The signed event a Stripe account would now send for the intent: (raw body, signature).

        Asked right after `pay` (start_payment does), the intent that call stored is used as it is, without
        reading it back from Redis."""
        paid, self._paid = self._paid, None
        intent = paid[1] if paid is not None and paid[0] == reference else json.loads(
            self.redis.get(self._key("pi", reference)))
        kind = "succeeded" if intent["status"] == "succeeded" else "payment_failed"
        body = json.dumps({"id": f"evt_sbx_{reference}_{kind}", "object": "event",
                           "type": f"payment_intent.{kind}", "created": int(time.time()),
                           "data": {"object": intent}}).encode()
        return [(body, sign(body, self.secret))]

    def parse_event(self, payload: bytes, signature: str) -> Event:
        return verify(payload, signature, self.secret)

