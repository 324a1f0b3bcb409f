"""The schema fuzzer run over every operation the served OpenAPI document lists, as each kind of caller.

For each operation and caller it draws `cases` requests (half that fit the
schema, half that do not) and records every answer that is a 5xx or does not
validate against `/api/openapi.json`. Nothing is hard-coded per endpoint, so
an endpoint added later is fuzzed as soon as the document lists it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import uuid
from decimal import Decimal

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.helpers import bearer, make_user

CHECKS = [not_a_server_error, response_schema_conformance]
ROLES = ("guest", "customer", "staff", "admin")


@dataclasses.dataclass
class Tally:
    cases: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def callers(app) -> dict[str, dict]:
    """Auth headers of a guest, a customer, a staff member and an admin whose token records MFA."""
    with app.extensions["shop"].db.session() as session:
        people = {role: make_user(session, role) for role in ROLES[1:]}
        seed_catalog(session, people["customer"])
    return {"guest": {}, **{role: bearer(app, user, mfa=True) for role, user in people.items()}}


def seed_catalog(session, customer) -> None:
    """A category, a product with a variant, so that generated ids sometimes meet real rows."""
    from models.catalog.tables import Category, Product, ProductVariant

    category = Category(name="Kitchen", path="Kitchen")
    session.add(category)
    session.flush()
    product = Product(handle=f"p-{uuid.uuid4().hex[:10]}", name="Teapot", category_id=category.id)
    session.add(product)
    session.flush()
    session.add(ProductVariant(product_id=product.id, sku=f"SKU-{uuid.uuid4().hex[:10]}",
                               price=Decimal("12.50"), currency="EUR", stock=5))


def run(app, cases: int, seed: int = 0) -> dict[tuple[str, str], Tally]:
    """Fuzz every operation as every caller; returns the tally per (operation, caller)."""
    headers_of = callers(app)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    tallies: dict[tuple[str, str], Tally] = {}
    access_log = logging.getLogger("web.access")
    level, _ = access_log.level, access_log.setLevel(logging.WARNING)  # thousands of lines say nothing here
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            for role, headers in headers_of.items():
                tally = tallies[(operation.label, role)] = Tally()
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    _fuzz(operation, mode, role, headers, max(1, cases // 2), seed, tally)
    finally:
        access_log.setLevel(level)
    return tallies


def _fuzz(operation, mode, role, headers, cases, seed, tally: Tally) -> None:
    strategy = operation.as_strategy(generation_mode=mode)

    @hypothesis_settings(max_examples=cases, deadline=None, database=None, derandomize=seed == 0,
                         phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case):
        tally.cases += 1
        response = case.call(headers={**headers, **(case.headers or {})} if headers else None)
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # recorded, reported together at the end
            body = response.text[:300]
            for failure in group.exceptions:
                tally.failures.append(f"{operation.label} as {role} [{mode.value}] -> {response.status_code} {body}\n"
                                      f"{failure.title}: {failure.message[:1500]}")

    if seed:
        fuzz = hypothesis_seed(seed)(fuzz)
    try:
        fuzz()
    except Unsatisfiable:  # an operation without parameters has no request that breaks its schema
        if mode is GenerationMode.POSITIVE:
            raise


def table(tallies: dict[tuple[str, str], Tally]) -> str:
    """Cases, 5xx and schema failures per caller, and the totals."""
    rows = collections.defaultdict(lambda: [0] * 5)
    for (_, role), tally in tallies.items():
        row = rows[role]
        row[0] += tally.cases
        for status, count in tally.statuses.items():
            row[1 if status < 400 else 2 if status < 500 else 3] += count
        row[4] += len(tally.failures)
    lines = ["| caller | cases | 2xx/3xx | 4xx | 5xx | failed checks |", "|---|---:|---:|---:|---:|---:|"]
    for role in ROLES:
        lines.append("| {} | {:,} | {:,} | {:,} | {} | {} |".format(role, *rows[role]))
    total = [sum(row[i] for row in rows.values()) for i in range(5)]
    operations = len({operation for operation, _ in tallies})
    lines.append("| all ({} operations) | {:,} | {:,} | {:,} | {} | {} |".format(operations, *total))
    return "\n".join(lines)
