"""Payment gateways: `sandbox` (no network, Stripe-like) and `stripe`."""

from __future__ import annotations

from integrations.payments.base import (Amount, Event, Intent, InvalidSignature, MalformedEvent, PaymentGateway,
                                        RefundResult, intent_from_object)

__all__ = ["Amount", "Event", "Intent", "InvalidSignature", "MalformedEvent", "PaymentGateway", "RefundResult",
           "intent_from_object", "make_gateway"]


def make_gateway(name: str, *, redis_url: str = "", sandbox_secret: str = "", sandbox_latency: float = 0.0,
                 api_key: str = "", webhook_secret: str = "", api_base: str = "",
                 timeout: float = 10.0) -> PaymentGateway:
    """The gateway called `name`, configured with plain values."""
    if name == "sandbox":
        from integrations.payments.sandbox import SandboxGateway
        return SandboxGateway(redis_url, sandbox_secret, sandbox_latency)
    if name == "stripe":
        from integrations.payments.stripe import StripeGateway
        return StripeGateway(api_key, webhook_secret, api_base, timeout)
    raise ValueError(f"unknown payment gateway {name!r}")
