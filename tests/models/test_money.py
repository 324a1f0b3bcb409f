"""One money module: currencies and their decimals from CLDR, used by validation and order emails."""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest

from models.money import CURRENCIES, amount_text, decimals
from models.orders.effects import email_context

pytestmark = pytest.mark.pure


def test_currencies_are_the_ones_in_use():
    assert {"EUR", "USD", "JPY", "KWD", "XCG"} <= CURRENCIES
    assert "BGN" in CURRENCIES  # replaced by the euro in 2026: prices set before stay valid
    assert not {"DEM", "FRF", "XAU", "XXX", "eur"} & CURRENCIES  # gone long ago, metals, test code, lower case


@pytest.mark.parametrize("amount, currency, text", [
    ("40", "EUR", "40.00"), ("1500", "JPY", "1500"), ("1.5", "KWD", "1.500"), ("12.3456", "USD", "12.35"),
    ("0.125", "EUR", "0.12"), ("99.5", "JPY", "100"), ("7", "eur", "7.00"),
])
def test_amounts_are_shown_with_their_currencys_decimals(amount, currency, text):
    assert amount_text(Decimal(amount), currency) == text


def test_decimals():
    assert (decimals("EUR"), decimals("JPY"), decimals("BHD")) == (2, 0, 3)


def test_order_emails_show_yen_without_cents():
    order = SimpleNamespace(id=uuid.uuid4(), user_id=uuid.uuid4(), currency="JPY", total=Decimal("3000.0000"),
                            items=[SimpleNamespace(product_name="Tea", sku="T-1", quantity=2,
                                                   line_total=Decimal("3000.0000"))])
    session = SimpleNamespace(get=lambda model, key: SimpleNamespace(first_name="Ada"))
    context = email_context(session, order)
    assert (context["total"], context["items"][0]["line_total"], context["currency"]) == ("3000", "3000", "JPY")
