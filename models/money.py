"""Money: which currencies we accept and how many decimals each is shown with, from CLDR (through Babel).

Amounts are Decimal everywhere and stored as numeric with their currency;
this module only knows about currencies, so validation, emails and exports
agree on them, and payment gateways get amounts in minor units from here.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies

# Legal tender anywhere at some point since then: a catalog priced in a currency
# that was replaced lately (BGN by the euro in 2026) stays valid.
TENDER_SINCE = date(2020, 1, 1)


def _tender_currencies() -> frozenset[str]:
    today = date.today()
    return frozenset(code for territory in get_global("territory_currencies")
                     for code in get_territory_currencies(territory, TENDER_SINCE, today, tender=True))


CURRENCIES = _tender_currencies()


def decimals(currency: str) -> int:
    """How many decimals `currency` is shown with: EUR 2, JPY 0, KWD 3."""
    return get_currency_precision(currency.upper())


def amount_text(amount: Decimal, currency: str) -> str:
    """`Decimal("40"), "EUR"` → `"40.00"`; `"1500", "JPY"` → `"1500"`; `"1.5", "KWD"` → `"1.500"` (no grouping)."""
    places = Decimal(1).scaleb(-decimals(currency))
    return f"{Decimal(amount).quantize(places, rounding=ROUND_HALF_EVEN):f}"


def minor_units(amount: Decimal, currency: str) -> int:
    """The amount in the currency's smallest unit, rounded as `amount_text` shows it: 12.50 EUR → 1250,
    1500 JPY → 1500, 1.5 KWD → 1500."""
    return int(Decimal(amount_text(amount, currency)).scaleb(decimals(currency)))

