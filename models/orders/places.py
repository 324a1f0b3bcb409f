"""Addresses and parcels as the shipping providers see them."""

from __future__ import annotations

from decimal import Decimal

from integrations.shipping.base import Parcel, Place
from models.orders.tables import Order

ITEM_WEIGHT_KG = Decimal("0.5")  # until variants carry a weight


def place_of(address) -> Place:
    """A Place from anything with AddressFields' attributes (or a dict of them)."""
    get = address.get if isinstance(address, dict) else lambda name, default=None: getattr(address, name, default)
    return Place(name=f"{get('first_name')} {get('last_name')}".strip(), line1=get("line1"), city=get("city"),
                 region=get("region") or "", postal_code=get("postal_code"), country=get("country"))


def destination_of(order: Order) -> Place:
    return place_of(order.shipping_address)


def origin_from(setting: str) -> Place:
    """SHIP_FROM is `name;line1;city;region;postal code;country`."""
    name, line1, city, region, postal_code, country = setting.split(";")
    return Place(name, line1, city, region, postal_code, country)


def parcel_of(order: Order) -> Parcel:
    return parcel_for(sum(item.quantity for item in order.items))


def parcel_for(item_count: int) -> Parcel:
    return Parcel(weight_kg=ITEM_WEIGHT_KG * max(1, item_count))
