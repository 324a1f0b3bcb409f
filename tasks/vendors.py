"""The vendor adapters of the running task, each behind its circuit breaker (built by bootstrap)."""

from __future__ import annotations

from tasks.runtime import shop


def payments():
    """The configured payment gateway (PAYMENTS_PROVIDER) behind its breaker."""
    return shop().payments


def payment_gateway():
    """The bare gateway, to verify the signatures of events."""
    return shop().payment_gateway


def shipping():
    """The configured shipping provider (SHIPPING_PROVIDER) behind its breaker."""
    return shop().shipping


def storage():
    """The object store (STORAGE_BACKEND)."""
    return shop().storage
