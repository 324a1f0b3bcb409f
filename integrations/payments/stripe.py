"""Stripe PaymentIntents and refunds through the `stripe` library."""

from __future__ import annotations

import stripe as stripe_lib

from integrations.errors import PermanentError, TransientError
from integrations.payments.base import Amount, Event, Intent, RefundResult, intent_from_object
from integrations.payments.signing import verify


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, webhook_secret: str, api_base: str = "", timeout: float = 10.0):
        bases = {"api": api_base} if api_base else None
        self.client = stripe_lib.StripeClient(api_key, base_addresses=bases, max_network_retries=0,
                                              http_client=stripe_lib.RequestsClient(timeout=timeout))
        self.secret = webhook_secret

    def pay(self, payment_id: str, order_id: str, amount: Amount, method: str) -> Intent:
        params = {"amount": amount.minor, "currency": amount.currency.lower(),
                  "metadata": {"order_id": order_id, "payment_id": payment_id}}
        intent = _call(self.client.v1.payment_intents.create, params,
                       {"idempotency_key": f"payment-{payment_id}-create"})
        if intent.status in ("requires_payment_method", "requires_confirmation") and method:
            try:
                intent = _call(lambda p, o: self.client.v1.payment_intents.confirm(intent.id, p, o),
                               {"payment_method": method}, {"idempotency_key": f"payment-{payment_id}-confirm"})
            except Declined:  # the intent now says why; the payment_failed event follows
                return self.retrieve(intent.id)
        return intent_from_object(intent.to_dict())

    def retrieve(self, reference: str) -> Intent:
        found = _call(lambda p, o: self.client.v1.payment_intents.retrieve(reference), {}, {})
        return intent_from_object(found.to_dict())

    def cancel(self, payment_id: str, reference: str) -> Intent:
        try:
            intent = _call(lambda p, o: self.client.v1.payment_intents.cancel(reference, p, o), {},
                           {"idempotency_key": f"payment-{payment_id}-cancel"})
        except PermanentError:  # not cancellable any more (it succeeded meanwhile): say how it stands
            return self.retrieve(reference)
        return intent_from_object(intent.to_dict())

    def refund(self, refund_id: str, reference: str, amount: Amount) -> RefundResult:
        refund = _call(self.client.v1.refunds.create,
                       {"payment_intent": reference, "amount": amount.minor,
                        "metadata": {"refund_id": refund_id}},
                       {"idempotency_key": f"refund-{refund_id}"})
        return RefundResult(refund.id, refund.status)

    def parse_event(self, payload: bytes, signature: str) -> Event:
        return verify(payload, signature, self.secret)


class Declined(PermanentError):
    """The card was declined: an outcome, not a failure of the call."""


def _call(method, params: dict, options: dict):
    """Call the library, mapping its errors to transient (retry) or permanent."""
    try:
        return method(params, options)
    except stripe_lib.CardError as exc:
        raise Declined(f"stripe: {exc.user_message or exc}") from exc
    except (stripe_lib.APIConnectionError, stripe_lib.RateLimitError) as exc:
        raise TransientError(f"stripe: {exc.user_message or exc}") from exc
    except stripe_lib.StripeError as exc:
        if exc.http_status is not None and exc.http_status >= 500:
            raise TransientError(f"stripe: {exc.http_status} {exc.user_message or exc}") from exc
        raise PermanentError(f"stripe: {exc.user_message or exc}") from exc
