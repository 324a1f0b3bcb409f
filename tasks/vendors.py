"""The vendor adapters of a worker process, each behind its circuit breaker."""

from __future__ import annotations

from functools import lru_cache

from integrations.breaker import Guarded, make_breaker
from integrations.payments import PaymentGateway, make_gateway
from settings import Settings, get_settings


def breaker(settings: Settings, name: str):
    """The Redis-backed breaker guarding vendor `name`."""
    return make_breaker(name, settings.REDIS_URL, settings.BREAKER_FAIL_MAX, settings.BREAKER_RESET_TIMEOUT)


@lru_cache(maxsize=1)
def payments() -> PaymentGateway:
    """The configured payment gateway (PAYMENTS_PROVIDER)."""
    settings = get_settings()
    return Guarded(payment_gateway(settings), breaker(settings, settings.PAYMENTS_PROVIDER))


@lru_cache(maxsize=4)
def payment_gateway(settings: Settings | None = None) -> PaymentGateway:
    """The bare gateway: web uses it to verify webhook signatures (no vendor call)."""
    settings = settings or get_settings()
    return make_gateway(settings.PAYMENTS_PROVIDER, redis_url=settings.REDIS_URL,
                        sandbox_secret=settings.SANDBOX_WEBHOOK_SECRET,
                        sandbox_latency=settings.SANDBOX_PAYMENT_LATENCY, api_key=settings.STRIPE_API_KEY,
                        webhook_secret=settings.STRIPE_WEBHOOK_SECRET, api_base=settings.STRIPE_API_BASE,
                        timeout=settings.STRIPE_TIMEOUT)


@lru_cache(maxsize=4)
def shipping(settings: Settings | None = None):
    """The configured shipping provider (SHIPPING_PROVIDER) behind its breaker."""
    settings = settings or get_settings()
    return Guarded(shipping_provider(settings), breaker(settings, settings.SHIPPING_PROVIDER))


def shipping_provider(settings: Settings):
    """The bare provider for `settings`."""
    from integrations.shipping import make_provider

    return make_provider(settings.SHIPPING_PROVIDER, wsdl_dir=settings.path(settings.UPS_WSDL_DIR),
                         endpoint=settings.UPS_ENDPOINT, username=settings.UPS_USERNAME,
                         password=settings.UPS_PASSWORD, access_key=settings.UPS_ACCESS_KEY,
                         account=settings.UPS_ACCOUNT_NUMBER, timeout=settings.UPS_TIMEOUT,
                         delivery_after=settings.SANDBOX_DELIVERY_AFTER)
