"""A carrier that answers like UPS without a network.

Prices follow weight and distance (same country or not); a label is a small
PDF; a parcel counts as delivered `delivery_after` seconds after its label
was bought (the time is part of the tracking number). Failures on demand:
destination postal code `00000` is refused, `99999` behaves like an outage.
"""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal

from integrations.errors import PermanentError, TransientError
from integrations.shipping.base import Label, Parcel, Place, Rate, Tracking

SERVICES = {"ground": (Decimal("6.50"), 5), "3_day_select": (Decimal("11.00"), 3),
            "2nd_day_air": (Decimal("17.00"), 2), "next_day_air": (Decimal("29.00"), 1)}


class SandboxShipping:
    name = "sandbox"

    def __init__(self, delivery_after: float = 0.0):
        self.delivery_after = delivery_after

    @staticmethod
    def _check(destination: Place) -> None:
        if destination.postal_code == "00000":
            raise PermanentError("sandbox shipping: the address cannot be validated")
        if destination.postal_code == "99999":
            raise TransientError("sandbox shipping: carrier unavailable")

    def rates(self, origin: Place, destination: Place, parcel: Parcel) -> list[Rate]:
        self._check(destination)
        factor = Decimal(1) if origin.country == destination.country else Decimal(3)
        return [Rate(service, (base + Decimal("1.20") * parcel.weight_kg) * factor, "USD", days)
                for service, (base, days) in SERVICES.items()]

    def buy_label(self, shipment_id: str, service: str, origin: Place, destination: Place,
                  parcel: Parcel) -> Label:
        self._check(destination)
        if service not in SERVICES:
            raise PermanentError(f"sandbox shipping: unknown service {service!r}")
        digest = hashlib.sha256(shipment_id.encode()).hexdigest()[:6].upper()
        tracking = f"1ZSBX{digest}{int(time.time())}"
        pdf = (b"%PDF-1.4\n% sandbox label\n" + f"{tracking} {service} to {destination.name}, "
               f"{destination.postal_code} {destination.country}\n".encode() + b"%%EOF\n")
        return Label(tracking, pdf, "application/pdf")

    def track(self, tracking_number: str) -> Tracking:
        bought = int(tracking_number[11:] or 0)
        if time.time() - bought >= self.delivery_after:
            return Tracking(tracking_number, "delivered", "Delivered")
        return Tracking(tracking_number, "in_transit", "On the way")
