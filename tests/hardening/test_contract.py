"""API.md's contract in the served document: money as decimal strings, date-times in UTC with `Z`."""

from __future__ import annotations

import re

MONEY_NAMES = re.compile(r"^(price|amount|total|subtotal|unitPrice|lineTotal|shippingTotal|taxTotal)$")


def properties(document):
    for name, schema in document["components"]["schemas"].items():
        if name == "PaginationMetadata":  # flask-smorest's own: `total` counts items
            continue
        for prop, spec in schema.get("properties", {}).items():
            yield f"{name}.{prop}", prop, spec


def test_money_is_declared_a_decimal_string_with_a_pattern(client):
    document = client.get("/api/openapi.json").json
    money = [(where, spec) for where, prop, spec in properties(document) if MONEY_NAMES.search(prop)]
    assert len(money) >= 8, money
    for where, spec in money:
        assert spec.get("type") == "string" and spec.get("format") == "decimal" and spec.get("pattern"), where
        assert re.fullmatch(spec["pattern"].strip("^$"), "12.50"), where


def test_date_times_are_rfc3339_in_utc_with_z(client, people):
    user, headers = people["customer"]
    body = client.get("/api/v1/users/me", headers=headers).json
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["createdAt"]), body["createdAt"]
    document = client.get("/api/openapi.json").json
    stamps = [where for where, prop, spec in properties(document) if prop.endswith("At")]
    assert stamps and all(spec.get("format") == "date-time"
                          for where, prop, spec in properties(document) if prop.endswith("At")), stamps
