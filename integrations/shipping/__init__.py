"""Shipping providers: `sandbox` (no network, UPS-like) and `ups` (SOAP through zeep)."""

from __future__ import annotations

from pathlib import Path

from integrations.shipping.base import Label, Parcel, Place, Rate, ShippingProvider, Tracking

__all__ = ["Label", "Parcel", "Place", "Rate", "ShippingProvider", "Tracking", "make_provider"]


def make_provider(name: str, *, wsdl_dir: Path | None = None, endpoint: str = "", username: str = "",
                  password: str = "", access_key: str = "", account: str = "", timeout: float = 10.0,
                  delivery_after: float = 0.0) -> ShippingProvider:
    """The provider called `name`, configured with plain values."""
    if name == "sandbox":
        from integrations.shipping.sandbox import SandboxShipping
        return SandboxShipping(delivery_after)
    if name == "ups":
        from integrations.shipping.ups import UpsShipping
        return UpsShipping(wsdl_dir, endpoint, username, password, access_key, account, timeout)
    raise ValueError(f"unknown shipping provider {name!r}")
