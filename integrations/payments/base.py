"""The payment gateway interface: PaymentIntents, refunds and signed webhook events."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

# ISO 4217 currencies without minor units (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                "XAF", "XOF", "XPF"}


def minor_units(amount: Decimal, currency: str) -> int:
    """`12.50 EUR` -> 1250; zero-decimal currencies stay whole."""
    exponent = 0 if currency.upper() in ZERO_DECIMAL else 2
    return int((amount * (10 ** exponent)).to_integral_value())


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

    def pay(self, payment_id: str, order_id: str, amount: Decimal, currency: str, method: str) -> Intent:
        """Create and confirm a PaymentIntent; the idempotency key comes from `payment_id`."""

    def retrieve(self, reference: str) -> Intent:
        """The PaymentIntent as the provider sees it now."""

    def refund(self, refund_id: str, reference: str, amount: Decimal, currency: str) -> RefundResult:
        """Refund part or all of a PaymentIntent; the idempotency key comes from `refund_id`."""

    def cancel(self, payment_id: str, reference: str) -> Intent:
        """Cancel a PaymentIntent not yet settled; returns it as it now stands (it may have succeeded)."""

    def parse_event(self, payload: bytes, signature: str) -> Event:
        """Verify the signature on the raw body and parse it; InvalidSignature when it does not match."""


class InvalidSignature(Exception):
    """A webhook whose signature does not verify: answer 400 and do nothing."""


class MalformedEvent(InvalidSignature):
    """A correctly signed webhook whose body is not an event (`{}`, `[]`, ids that are not text)."""
