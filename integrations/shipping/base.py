"""The shipping provider interface: rates, labels and tracking."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class Place:
    """The parts of an address a carrier needs."""

    name: str
    line1: str
    city: str
    region: str
    postal_code: str
    country: str


@dataclass(frozen=True)
class Parcel:
    weight_kg: Decimal
    length_cm: int = 30
    width_cm: int = 20
    height_cm: int = 10


@dataclass(frozen=True)
class Rate:
    service: str
    amount: Decimal
    currency: str
    days: int | None


@dataclass(frozen=True)
class Label:
    tracking_number: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class Tracking:
    tracking_number: str
    status: str  # in_transit, delivered, exception
    description: str

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"


class ShippingProvider(Protocol):
    name: str

    def rates(self, origin: Place, destination: Place, parcel: Parcel) -> list[Rate]:
        """Prices for every service between two places."""

    def buy_label(self, shipment_id: str, service: str, origin: Place, destination: Place,
                  parcel: Parcel) -> Label:
        """Buy a label; the same `shipment_id` names the same purchase."""

    def track(self, tracking_number: str) -> Tracking:
        """Where the parcel is now."""
