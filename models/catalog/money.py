"""Prices: their limits and the decimal-string form API.md fixes (currencies come from models.money)."""

from __future__ import annotations

from decimal import Decimal

from models.money import CURRENCIES  # noqa: F401  (the catalog's schemas read it from here)


# numeric(20, 4): at most 16 digits before the point and 4 after.
MAX_PRICE = Decimal("9999999999999999.9999")
PRICE_PLACES = 4


def format_price(value: Decimal) -> str:
    """`12.5000` → `"12.50"`: at least two decimals, no trailing zeros beyond them."""
    text = f"{value.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"
