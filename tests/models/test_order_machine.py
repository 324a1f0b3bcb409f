"""The order state machine's transition table is exactly the spec's diagram."""

from __future__ import annotations

import pytest

from models.orders.machine import TRANSITIONS

pytestmark = pytest.mark.pure

DIAGRAM = {("pending", "processing"), ("pending", "cancelled"), ("processing", "shipped"),
           ("processing", "cancelled"), ("shipped", "delivered"), ("shipped", "returned"),
           ("delivered", "returned")}


def test_the_table_is_exactly_the_spec_diagram():
    assert {(str(a), str(b)) for a, b in TRANSITIONS} == DIAGRAM
