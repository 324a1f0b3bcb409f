"""The payment gateway interface: PaymentIntents, refunds and signed webhook events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

@dataclass(frozen=True)
class Amount:
    """An amount in the currency's smallest unit, as the caller computed it: 12.50 EUR is 1250, 1500 JPY is
    1500, 1.250 KWD is 1250. The gateway sends it as it is; it knows nothing of currencies' decimals."""

    minor: int
    currency: str


@dataclass(frozen=True)
class Intent:
    """A provider's PaymentIntent as we need it: its id, status and our payment id."""

    reference: str
    status: str  # Stripe's: requires_payment_method, processing, succeeded, canceled, ...
    payment_id: str = ""
    failure: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        return self.status in ("requires_payment_method", "canceled")


def intent_from_object(obj: dict) -> Intent:
    """An Intent from Stripe's `payment_intent` object (an API answer, or an event's `data.object`)."""
    error = obj.get("last_payment_error") or {}
    return Intent(obj["id"], obj["status"], (obj.get("metadata") or {}).get("payment_id", ""),
                  error.get("message", ""))


@dataclass(frozen=True)
class RefundResult:
    reference: str
    status: str  # succeeded, pending, failed

    @property
    def settled(self) -> bool:
        return self.status in ("succeeded", "failed")


@dataclass(frozen=True)
class Event:
    """A verified webhook event."""

    id: str
    type: str
    object_id: str
    payload: dict


class PaymentGateway(Protocol):
    name: str

    def pay(self, payment_id: str, order_id: str, amount: Amount, method: str) -> Intent:
        """Create and confirm a PaymentIntent; the idempotency key comes from `payment_id`."""

    def retrieve(self, reference: str) -> Intent:
        """The PaymentIntent as the provider sees it now."""

    def refund(self, refund_id: str, reference: str, amount: Amount) -> RefundResult:
        """Refund part or all of a PaymentIntent; the idempotency key comes from `refund_id`."""

    def cancel(self, payment_id: str, reference: str) -> Intent:
        """Cancel a PaymentIntent not yet settled; returns it as it now stands (it may have succeeded)."""

    def parse_event(self, payload: bytes, signature: str) -> Event:
        """Verify the signature on the raw body and parse it; InvalidSignature when it does not match."""


class InvalidSignature(Exception):
    """A webhook whose signature does not verify: answer 400 and do nothing."""


class MalformedEvent(InvalidSignature):
    """A correctly signed webhook whose body is not an event (`{}`, `[]`, ids that are not text)."""
